"""OPML feed lists: reading what feed readers export, writing what they import.

Reading is defensive: the document is parsed with defusedxml and DTDs are refused (no
entity expansion, no external entities), the size is capped, and a bad outline is reported
and skipped, never fatal. Category outlines (no xmlUrl) nest; every enclosing category and
the `category` attribute become the feed's tags.
"""

from __future__ import annotations

import email.utils
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from xml.etree.ElementTree import Element, SubElement, indent, tostring

import defusedxml.ElementTree as SafeTree
from defusedxml import DefusedXmlException

from monitor.config import FeedConfig
from monitor.errors import ConfigError, MonitorError
from monitor.ingest.feeds import canonical_url

MAX_BYTES = 5 * 1024 * 1024
_FEED_TYPES = frozenset({"rss", "atom", "rdf", "feed", "xml"})


class OpmlError(MonitorError):
    """The file is not a readable OPML document."""


@dataclass(slots=True)
class Imported:
    feeds: list[FeedConfig] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)  # "url: reason"


def parse(data: bytes, *, name: str = "OPML") -> Imported:
    if len(data) > MAX_BYTES:
        raise OpmlError(f"{name}: larger than {MAX_BYTES // (1024 * 1024)} MB")
    try:
        root = SafeTree.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise OpmlError(
            f"{name}: refused ({type(exc).__name__}: DTDs and entities are not allowed)"
        ) from exc
    except (SafeTree.ParseError, ValueError, UnicodeDecodeError) as exc:
        raise OpmlError(f"{name}: not well-formed XML ({exc})") from exc
    if root.tag != "opml" or root.find("body") is None:
        raise OpmlError(f"{name}: not an OPML document (no <opml><body>)")
    result = Imported()
    seen: set[str] = set()
    _walk(root.find("body"), result, seen)
    return result


def _walk(body: Element, result: Imported, seen: set[str]) -> None:
    """Depth-first over the outlines in document order, iteratively: a hostile file may
    nest thousands deep."""
    stack: list[tuple[Iterator[Element], tuple[str, ...]]] = [(iter(body.findall("outline")), ())]
    while stack:
        children, tags = stack[-1]
        outline = next(children, None)
        if outline is None:
            stack.pop()
            continue
        inner = _outline(outline, tags, result, seen)
        if inner is not None:
            stack.append((iter(outline.findall("outline")), inner))


def _outline(
    outline: Element, tags: tuple[str, ...], result: Imported, seen: set[str]
) -> tuple[str, ...] | None:
    """Take one outline; the tags for the outlines inside it (None: do not look inside)."""
    label = (outline.get("title") or outline.get("text") or "").strip()
    url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
    if not url:  # a category: its outlines get its name as a tag
        return (*tags, label) if label else tags
    kind = (outline.get("type") or "rss").strip().lower()
    if kind not in _FEED_TYPES:
        result.invalid.append(f"{url}: outline type {outline.get('type')!r} is not a feed")
        return None
    extra = [t.strip().strip("/") for t in (outline.get("category") or "").split(",")]
    feed_tags = tuple(dict.fromkeys(t for t in (*tags, *extra) if t))
    key = canonical_url(url)
    if key in seen:
        result.duplicates.append(url)
        return None
    try:
        feed = FeedConfig(url=url, name="" if label == url else label, tags=feed_tags)
    except ConfigError as exc:
        result.invalid.append(f"{url}: {str(exc).split(': ', 1)[-1]}")
        return None
    seen.add(key)
    result.feeds.append(feed)
    return tags  # feeds nested under a feed: rare, still feeds


def render(feeds: list[FeedConfig], *, title: str = "news-monitor feeds") -> bytes:
    """OPML 2.0: feeds grouped in one folder per first tag (how Miniflux, FreshRSS and
    NetNewsWire store categories); all tags also in the `category` attribute."""
    root = Element("opml", version="2.0")
    head = SubElement(root, "head")
    SubElement(head, "title").text = title
    SubElement(head, "dateCreated").text = email.utils.format_datetime(datetime.now(UTC))
    body = SubElement(root, "body")
    folders: dict[str, Element] = {}
    for feed in feeds:
        parent = body
        if feed.tags:
            parent = folders.get(feed.tags[0]) or SubElement(
                body, "outline", text=feed.tags[0], title=feed.tags[0]
            )
            folders[feed.tags[0]] = parent
        attributes = {
            "type": "rss",
            "text": feed.name or feed.url,
            "title": feed.name or feed.url,
            "xmlUrl": feed.url,
        }
        if feed.tags:
            attributes["category"] = ",".join("/" + t for t in feed.tags)
        SubElement(parent, "outline", attributes)
    indent(root)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(root, encoding="unicode").encode()
