"""Article text and metadata from a page (trafilatura), and plain text from feed HTML.

trafilatura is not thread-safe (lxml segfaults seen under threads): call it from one
thread per process; a daemon runs it in a process pool.
"""

from __future__ import annotations

import functools
import html
import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

import lxml.etree
import lxml.html
import trafilatura

from monitor.errors import ExtractError
from monitor.model import Article
from monitor.text import normalise_space

MIN_TEXT = 200  # characters: below this a page is not an article


def extract(html: bytes | str, *, url: str, metadata: bool = True) -> Article:
    """The main text of a page with its language and canonical URL, and with `metadata` its
    title, date, author and site too. (trafilatura's metadata search costs more than the
    text itself; callers that have them from the feed skip it.)"""
    try:
        doc = trafilatura.bare_extraction(
            html,
            url=url,
            fast=True,
            include_comments=False,
            with_metadata=metadata,
        )
    except (ValueError, TypeError) as exc:  # trafilatura's own input errors
        raise ExtractError(f"{url}: {exc}") from exc
    if doc is None or isinstance(doc, dict):  # dict only when as_dict=True
        raise ExtractError(f"{url}: no article text found")
    text = (doc.text or "").strip()
    if len(text) < MIN_TEXT:
        raise ExtractError(f"{url}: no article text found ({len(text)} characters)")
    return Article(
        text=text,
        title=(doc.title or "").strip(),
        author=(doc.author or "").strip(),
        published=_date(doc.date),
        site=(doc.sitename or "").strip(),
        language=detect_language(text),
        canonical_url=_canonical(doc.url if metadata else _declared_canonical(html), url),
        from_page=True,
    )


_BLOCKS = ("p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "tr", "pre")


def html_to_text(fragment: str) -> str:
    """Plain text of a feed's HTML summary or content: one line per block."""
    if "<" not in fragment:
        return normalise_space(html.unescape(fragment))
    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (lxml.etree.ParserError, ValueError):
        return ""
    for element in list(root.iter("script", "style", "template")):
        element.drop_tree()
    for element in root.iter(*_BLOCKS):
        element.tail = "\n" + (element.tail or "")
    lines = (normalise_space(line) for line in root.text_content().split("\n"))
    return "\n".join(line for line in lines if line)


@functools.cache
def _identifier():  # the model takes ~0.3 s to load: only when first needed
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect_language(text: str) -> str:
    """ISO 639-1 code of the text's language, or "" when unsure."""
    if len(text) < 20:
        return ""
    lang, prob = _identifier().classify(text[:1000])  # as sure as on 3,000, a third the cost
    return lang if prob >= 0.3 else ""


_CANONICAL = re.compile(
    rb"""<link\b(?=[^>]*\brel\s*=\s*["']?canonical\b)[^>]*?\bhref\s*=\s*["']?([^"'\s>]+)""",
    re.IGNORECASE,
)


def _declared_canonical(page: bytes | str) -> str:
    """The <link rel="canonical"> of a page's head, found without parsing the page."""
    head = page[:65536]
    found = _CANONICAL.search(head if isinstance(head, bytes) else head.encode("utf-8", "replace"))
    return html.unescape(found.group(1).decode("utf-8", "replace")) if found else ""


def _canonical(declared: str | None, fetched: str) -> str:
    """The page's own canonical URL, unless it cannot be this article's: another host, or
    the site's home page (templates that point every page there would merge articles)."""
    declared = (declared or "").strip()
    if not declared or declared == fetched:
        return ""
    try:
        there, here = urlsplit(declared), urlsplit(fetched)
    except ValueError:
        return ""
    if there.path in ("", "/") and not there.query:
        return ""
    if here.scheme in ("http", "https") and there.hostname != here.hostname:
        return ""
    return declared


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
