"""Feed parsing into Items — RSS, Atom and RDF with feedparser, JSON Feed 1.0/1.1 with the
standard library — and URL canonicalisation.

feedparser is only ever given bytes: given a string it may read a local file or fetch a URL.
"""

from __future__ import annotations

import calendar
import contextlib
import dataclasses
import email.utils
import json
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, unquote, urlencode, urljoin, urlsplit, urlunsplit

import feedparser
import structlog

from monitor.errors import FeedError
from monitor.model import Article, Item, stable_id

log = structlog.get_logger(__name__)

# Query parameters that identify a campaign or a click, never the article.
_TRACKING = frozenset(
    """
    fbclid gclid dclid gbraid wbraid msclkid mc_cid mc_eid igshid yclid twclid ocid
    cmpid ncid ref_src _hsenc _hsmi mkt_tok oly_anon_id oly_enc_id vero_id
    """.split()
)
_TRACKING_PREFIXES = ("utm_", "at_", "pk_")


def canonical_url(url: str, *, keep_fragment: bool = False) -> str:
    """The URL that identifies an article: lower-case scheme and host, no default port,
    no fragment (unless `keep_fragment`: a post that is one anchor of a shared page), no
    tracking parameters, remaining parameters sorted."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:  # a bad port or IPv6 literal: keep the URL as it is
        return url.strip()
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return url.strip()
    host = (parts.hostname or "").lower()
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    query = sorted(
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in _TRACKING and not k.lower().startswith(_TRACKING_PREFIXES)
    )
    fragment = parts.fragment if keep_fragment else ""
    return urlunsplit((scheme, host, parts.path or "/", urlencode(query), fragment))


def item_url(item: Item) -> str:
    """The canonical URL that identifies the item: its link's, keeping the fragment when the
    link is one anchor of a page shared by several entries (see `Item.shared_page`)."""
    return canonical_url(item.url, keep_fragment=item.shared_page) if item.url else ""


def article_url(item: Item, article: Article) -> str:
    """The canonical URL of an item's article: the page's own canonical link, else the
    item's. A post of a shared page keeps its own (the page's link is the whole page's)."""
    if item.shared_page or not article.canonical_url:
        return item_url(item)
    return canonical_url(article.canonical_url)


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedDocument:
    """One parsed feed document."""

    title: str
    items: list[Item]
    updated: datetime | None = None  # when the document says it was last built


JSON_TYPES = ("application/feed+json", "application/json")
LINK_SCHEMES = ("http", "https", "file")  # file: a local feed replayed, its pages beside it


def parse_feed(body: bytes, *, url: str, headers: dict[str, str] | None = None) -> list[Item]:
    """The entries of a feed document (see `parse_document`)."""
    return parse_document(body, url=url, headers=headers).items


def untitled(url: str) -> str:
    """The source name of a feed without a title: its host, or a local file's name (not
    its whole file:// URL, which would be the widest column of every table)."""
    parts = urlsplit(url)
    if parts.hostname:
        return parts.hostname
    if parts.scheme == "file":
        return unquote(parts.path.rstrip("/").rsplit("/", 1)[-1]) or url
    return url


def parse_document(body: bytes, *, url: str, headers: dict[str, str] | None = None) -> FeedDocument:
    """A feed document (see `_document`). Whatever hostile bytes do to a parser ends as a
    FeedError, recorded against the feed like any other."""
    try:
        return _document(body, url=url, headers=headers)
    except (FeedError, TypeError):
        raise
    except Exception as exc:
        log.exception("feed_parser_failed", feed=url)
        raise FeedError(url, f"not a readable feed ({type(exc).__name__}: {exc})") from exc


def _document(body: bytes, *, url: str, headers: dict[str, str] | None = None) -> FeedDocument:
    """A feed document: RSS, Atom, RDF or JSON Feed (told apart by the media type, else by
    the first character). `url` is where it came from: relative links resolve against it. A
    document with no entries that is ill-formed is a FeedError; an ill-formed XML one whose
    entries still parse is accepted with a warning (feedparser's "bozo")."""
    if not isinstance(body, bytes):
        raise TypeError("parse_document takes the document's bytes")
    response_headers = {"content-type": "application/xml"}
    response_headers.update((k.lower(), v) for k, v in (headers or {}).items())
    content_type = response_headers["content-type"]
    media = content_type.split(";", 1)[0].strip().lower()
    if media in JSON_TYPES or (
        media not in ("application/rss+xml", "application/atom+xml")
        and body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{"
    ):
        return _mark_shared_pages(_json_feed(body, url=url))
    if content_type.lower().startswith("text/") and not _CHARSET.search(content_type):
        # RFC 3023 makes text/xml without a charset US-ASCII, overriding the document's own
        # declaration; no server means that, and no reader does it. The declaration rules.
        response_headers["content-type"] = "application/xml"
    body = _mend_encoding(body, response_headers, url)
    if urlsplit(url).scheme in ("http", "https"):
        # Relative links resolve against it. (feedparser mangles file: URLs, so those
        # are resolved below, by urljoin.)
        response_headers["content-location"] = url
    try:
        parsed = feedparser.parse(body, response_headers=response_headers)
    except Exception as exc:  # hostile bytes can break feedparser itself (found by fuzzing:
        # a NUL or a non-UTF-8 byte in the XML declaration's encoding name)
        raise FeedError(url, f"not a readable feed ({type(exc).__name__}: {exc})") from exc
    if parsed.bozo and not parsed.entries and not isinstance(parsed.get("bozo_exception"), _SOFT):
        reason = str(parsed.get("bozo_exception", "not a feed")).strip() or "not a feed"
        raise FeedError(url, f"not a readable feed ({reason})")
    if not parsed.entries and not parsed.get("version"):
        raise FeedError(url, "not a feed (no RSS, Atom or RDF root element)")
    if parsed.bozo:
        log.warning("feed_ill_formed", feed=url, error=str(parsed.get("bozo_exception")))
    channel = parsed.feed.get("title", "") or untitled(url)
    items = []
    for entry in parsed.entries:
        item = _item(entry, feed=url, channel=channel)
        if item is None:
            log.warning("entry_skipped", feed=url, reason="no guid, link, title or text")
            continue
        items.append(item)
    updated = _when(
        dict.get(parsed.feed, "updated_parsed") or dict.get(parsed.feed, "published_parsed")
    )
    return _mark_shared_pages(FeedDocument(title=channel, items=items, updated=updated))


def _mark_shared_pages(document: FeedDocument) -> FeedDocument:
    """Entries whose links are anchors of one page (a day's page holding one post per
    `#fragment`, as Scripting News has) are posts of a shared page: the fragment is part of
    each one's identity, and its text is the feed's, not the whole page's. Told by the
    document — several entries link to one page with different fragments — or by the entry
    itself: its GUID is its link, fragment included (a permalink to the post), so the day's
    first post is one from the start. A fragment with "=" is tracking (#xtor=RSS-3), never
    a post's."""
    anchors: defaultdict[str, set[str]] = defaultdict(set)
    for item in document.items:
        if _anchor(item.url):
            anchors[canonical_url(item.url)].add(urlsplit(item.url).fragment)
    shared = {page for page, fragments in anchors.items() if len(fragments) > 1}

    def posted(item: Item) -> bool:
        if not _anchor(item.url):
            return False
        return canonical_url(item.url) in shared or item.guid.strip() == item.url.strip()

    if not any(posted(item) for item in document.items):
        return document
    items = [dataclasses.replace(i, shared_page=True) if posted(i) else i for i in document.items]
    return dataclasses.replace(document, items=items)


def _anchor(url: str) -> bool:
    """Whether a link ends in a fragment that can name a post."""
    fragment = urlsplit(url).fragment if url and "#" in url else ""
    return bool(fragment) and "=" not in fragment


def _json_feed(body: bytes, *, url: str) -> FeedDocument:
    """A JSON Feed 1.0 or 1.1 document (jsonfeed.org). Raw control characters inside
    strings are accepted, as real feeds contain them."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FeedError(url, f"not a readable JSON feed (not UTF-8: byte {exc.start})") from None
    try:
        data = json.loads(text, strict=False)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        reason = (exc.msg[0].lower() + exc.msg[1:]).removesuffix(" starting at")
        raise FeedError(url, f"not a readable JSON feed ({where}: {reason})") from None
    except RecursionError:
        raise FeedError(url, "not a readable JSON feed (nested too deeply)") from None
    except ValueError as exc:  # e.g. an integer beyond Python's digit limit
        raise FeedError(url, f"not a readable JSON feed ({exc})") from None
    if not isinstance(data, dict) or not str(data.get("version", "")).startswith(
        ("https://jsonfeed.org/version/", "http://jsonfeed.org/version/")
    ):
        raise FeedError(url, "not a JSON feed (no jsonfeed.org version)")
    entries = data.get("items")
    if not isinstance(entries, list):
        raise FeedError(url, "not a readable JSON feed (items is not a list)")
    channel = _string(data.get("title")) or untitled(url)
    feed_author = _json_author(data)
    items = []
    for n, entry in enumerate(entries):
        item = (
            _json_item(entry, feed=url, channel=channel, author=feed_author)
            if isinstance(entry, dict)
            else None
        )
        if item is None:
            log.warning("entry_skipped", feed=url, entry=n, reason="no id, url, title or text")
            continue
        items.append(item)
    return FeedDocument(title=channel, items=items)


def _json_item(entry: dict, *, feed: str, channel: str, author: str) -> Item | None:
    link = _string(entry.get("url")) or _string(entry.get("external_url"))
    if link:
        with contextlib.suppress(ValueError):
            link = urljoin(feed, link)
    guid = _string(entry.get("id"))  # 1.0 allows a number; str() of it is its identity
    if (
        not guid
        and isinstance(entry.get("id"), int | float)
        and not isinstance(entry.get("id"), bool)
    ):
        guid = str(entry["id"])
    title = _string(entry.get("title"))
    content = _string(entry.get("content_html")) or _html_escape(_string(entry.get("content_text")))
    return _entry_item(
        guid=guid,
        url=link,
        title=title,
        source=channel,
        feed=feed,
        summary=_string(entry.get("summary")),
        content=content,
        published=_json_date(entry.get("date_published") or entry.get("date_modified")),
        author=_json_author(entry) or author,
    )


def _string(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _html_escape(text: str) -> str:
    """content_text as HTML paragraphs, so later stages read one kind of content."""
    if not text:
        return ""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "".join(f"<p>{p}</p>" for p in escaped.split("\n\n") if p.strip())


def _json_author(data: dict) -> str:
    authors = data.get("authors")  # 1.1
    if not isinstance(authors, list):
        authors = [data.get("author")]  # 1.0
    names = [_string(a.get("name")) for a in authors if isinstance(a, dict)]
    return ", ".join(n for n in names if n)


def _json_date(value: object) -> datetime | None:
    """RFC 3339 as the spec says; RFC 822 as some real feeds write it anyway."""
    text = _string(value)
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    try:
        return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    except (OverflowError, ValueError):  # year 1 or 9999 shifted out of range
        return None


# feedparser's bozo notes that say nothing is wrong with the XML: the server's media type or
# charset was not the document's. An empty feed with one of these is still a feed.
_SOFT = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
_DECLARED = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)""")
_DECLARED_ANY = re.compile(rb"""^(\s*<\?xml[^>]*?encoding\s*=\s*["'])[A-Za-z0-9._-]+""")
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._-]+)", re.IGNORECASE)


def _mend_encoding(body: bytes, headers: dict[str, str], url: str) -> bytes:
    """Fix the two encoding faults feedparser handles badly, in `body` or `headers`:

    - a UTF-8 document with a few invalid bytes: those bytes become U+FFFD (feedparser would
      decode the whole document as windows-1252, garbling every correct character);
    - a valid UTF-8 document with non-ASCII text declared as some 8-bit charset: it is read
      as UTF-8 (text in an 8-bit charset almost never happens to be valid UTF-8).

    A document whose non-ASCII bytes are all invalid UTF-8 is in the encoding it says or in
    windows-1252: that is left to feedparser."""
    found = _CHARSET.search(headers["content-type"]) or _DECLARED.match(body[:512])
    declared = found.group(1) if found else "utf-8"
    declared = (declared.decode("ascii") if isinstance(declared, bytes) else declared).lower()
    if declared.startswith(("utf-16", "utf-32", "ucs")) or body[:4].count(0):
        return body
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("utf-8", errors="replace")
        replaced = text.count("\ufffd")
        if declared.replace("_", "-") in ("utf-8", "utf8") and replaced < sum(
            1 for c in text if c > "\x7f" and c != "\ufffd"
        ):
            log.warning("feed_invalid_utf8", feed=url, replaced=replaced)
            return text.encode("utf-8")
        return body
    if declared.replace("_", "-") not in ("utf-8", "utf8") and not text.isascii():
        log.warning("feed_charset_overridden", feed=url, declared=declared, used="utf-8")
        headers["content-type"] = _CHARSET.sub("charset=utf-8", headers["content-type"])
        if not _CHARSET.search(headers["content-type"]):
            headers["content-type"] += "; charset=utf-8"
        return _DECLARED_ANY.sub(rb"\g<1>utf-8", body, count=1)
    return body


def _item(entry: feedparser.FeedParserDict, *, feed: str, channel: str) -> Item | None:
    link = (entry.get("link") or "").strip()
    if link:  # (urljoin of "" would give every link-less entry the feed's own URL)
        with contextlib.suppress(ValueError):  # an unparsable link stays as written
            link = urljoin(feed, link)
    guid = (entry.get("id") or "").strip()
    source = (entry.get("source") or {}).get("title") or channel
    content = ""
    for part in entry.get("content", ()):  # Atom content / RSS content:encoded
        if part.get("value") and len(part["value"]) > len(content):
            content = part["value"]
    return _entry_item(
        guid=guid,
        url=link,
        title=(entry.get("title") or "").strip(),
        source=source.strip(),
        feed=feed,
        summary=(entry.get("summary") or "").strip(),
        content=content,
        # dict.get: FeedParserDict.get maps a missing updated_parsed to published_parsed, warning
        published=_when(dict.get(entry, "published_parsed") or dict.get(entry, "updated_parsed")),
        author=(entry.get("author") or "").strip(),
    )


def _entry_item(**fields) -> Item | None:
    """The Item of an entry. One with neither GUID nor link (RSS 0.9x items may have none)
    is identified by its text, the same on every poll; one with no text either is None."""
    scheme = urlsplit(fields["url"]).scheme.lower() if fields["url"] else ""
    if fields["url"] and scheme not in LINK_SCHEMES:
        # javascript:, data:, mailto: … are not articles, and would be links for people
        log.warning("entry_link_dropped", feed=fields["feed"], scheme=scheme or None)
        fields["url"] = ""
    if not (fields["guid"] or fields["url"]):
        text = (fields["title"], fields["summary"], fields["content"])
        if not any(text):
            return None
        fields["guid"] = "urn:monitor:entry:" + stable_id(fields["feed"], *text)
    return Item(**fields)


def _when(parsed) -> datetime | None:
    if not parsed:
        return None
    return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
