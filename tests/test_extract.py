"""Extraction on the seed pages: the article text back, none of the page chrome."""

from __future__ import annotations

import difflib
import json

import pytest

from monitor.errors import ExtractError
from monitor.extract import detect_language, extract, html_to_text

from .conftest import ROOT, SAMPLE_FEEDS

MANIFEST = json.loads((SAMPLE_FEEDS / "manifest.json").read_text())


def similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a.split(), b.split(), autojunk=False).ratio()


@pytest.mark.parametrize("entry", MANIFEST["articles"], ids=lambda e: e["source"])
def test_seed_page_extracts_to_the_seed_text(entry: dict) -> None:
    page = SAMPLE_FEEDS / entry["page"]
    article = extract(page.read_bytes(), url=page.as_uri())
    seed = (ROOT / entry["seed"]).read_text(encoding="utf-8")
    extracted = f"{article.title}\n{article.text}"

    assert similarity(seed, extracted) >= 0.95
    for marker in MANIFEST["chrome_markers"]:
        assert marker not in extracted
    assert article.title == entry["title"]
    assert article.canonical_url == entry["guid"]
    assert article.published is not None
    assert article.published.date().isoformat() == entry["published"][:10]
    assert article.site
    assert article.language == "en"
    assert article.author == (entry["author"] or "")
    assert article.from_page


def test_a_page_without_an_article_is_an_error() -> None:
    page = b"<html><body><nav>Home | World</nav><footer>All rights reserved</footer></body></html>"
    with pytest.raises(ExtractError, match="no article text"):
        extract(page, url="https://example.org/")


def test_feed_html_becomes_plain_text() -> None:
    assert html_to_text("<p>Putin &amp; Kim</p><p>met.</p>").split() == [
        "Putin",
        "&",
        "Kim",
        "met.",
    ]
    assert html_to_text("plain   text") == "plain text"


def test_language_is_detected_not_guessed() -> None:
    assert detect_language("Der russische Präsident traf den nordkoreanischen Machthaber.") == "de"
    assert detect_language("too short") == ""
