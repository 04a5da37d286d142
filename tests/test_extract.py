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


def test_the_language_model_is_unpacked_once_into_the_cache_and_read_back_whole(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model's `.xz` is decompressed once into the user's cache; what is read back is
    what the packed file holds, and a cache that cannot be written falls back to it."""
    import numpy as np
    from py3langid.langid import MODEL_DIR, MODEL_FILE
    from py3langid.modelio import load_model

    from monitor import extract

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    packed = MODEL_DIR / MODEL_FILE
    arrays = extract._unpacked_model(packed)
    assert arrays is not None and len(list((tmp_path / "cache" / "news-monitor").iterdir())) == 1
    again = extract._unpacked_model(packed)  # read from the cache this time
    ptc, pc, classes, _, _, out_feat = load_model(packed)
    assert again is not None and again["classes"].tolist() == classes
    assert np.array_equal(again["ptc"], ptc) and np.array_equal(again["pc"], pc)
    assert again["out_feat"].tolist() == out_feat

    blocked = tmp_path / "read-only"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    assert extract._unpacked_model(packed) is None  # the caller loads the packed file
