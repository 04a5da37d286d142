"""Feed parsing (feedparser) into Items, and URL canonicalisation.

feedparser is only ever given bytes: given a string it may read a local file or fetch a URL.
"""

from __future__ import annotations

import calendar
import contextlib
import re
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import feedparser
import structlog

from monitor.errors import FeedError
from monitor.model import Item, stable_id

log = structlog.get_logger(__name__)

# Query parameters that identify a campaign or a click, never the article.
_TRACKING = frozenset(
    """
    fbclid gclid dclid gbraid wbraid msclkid mc_cid mc_eid igshid yclid twclid ocid
    cmpid ncid ref_src _hsenc _hsmi mkt_tok oly_anon_id oly_enc_id vero_id
    """.split()
)
_TRACKING_PREFIXES = ("utm_", "at_", "pk_")


def canonical_url(url: str) -> str:
    """The URL that identifies an article: lower-case scheme and host, no default port,
    no fragment, no tracking parameters, remaining parameters sorted."""
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
    return urlunsplit((scheme, host, parts.path or "/", urlencode(query), ""))


def parse_feed(body: bytes, *, url: str, headers: dict[str, str] | None = None) -> list[Item]:
    """The entries of a feed document. `url` is where it came from: relative links resolve
    against it. A document with no entries that is ill-formed is a FeedError; an ill-formed
    one whose entries still parse is accepted with a warning (feedparser's "bozo")."""
    if not isinstance(body, bytes):
        raise TypeError("parse_feed takes the document's bytes")
    response_headers = {"content-type": "application/xml"}
    response_headers.update((k.lower(), v) for k, v in (headers or {}).items())
    content_type = response_headers["content-type"]
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
    channel = parsed.feed.get("title", "") or urlsplit(url).hostname or url
    items = []
    for entry in parsed.entries:
        item = _item(entry, feed=url, channel=channel)
        if item is None:
            log.warning("entry_skipped", feed=url, reason="no guid, link, title or text")
            continue
        items.append(item)
    return items


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
    title = (entry.get("title") or "").strip()
    summary = (entry.get("summary") or "").strip()
    if not (guid or link):
        # No identity of its own (RSS 0.9x items may have none): its text is its identity,
        # the same on every poll.
        if not (title or summary or content):
            return None
        guid = "urn:monitor:entry:" + stable_id(feed, title, summary, content)
    return Item(
        guid=guid,
        url=link,
        title=title,
        source=source.strip(),
        feed=feed,
        summary=summary,
        content=content,
        # dict.get: FeedParserDict.get maps a missing updated_parsed to published_parsed, warning
        published=_when(dict.get(entry, "published_parsed") or dict.get(entry, "updated_parsed")),
        author=(entry.get("author") or "").strip(),
    )


def _when(parsed) -> datetime | None:
    if not parsed:
        return None
    return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
