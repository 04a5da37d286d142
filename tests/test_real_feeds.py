"""Real-world feeds (tests/fixtures/realfeeds: miniflux's and feed-rs's test data) served over
HTTP and polled through the daemon's path into the items stream of a real Redis: no entry lost
without a reason, titles and links as an independent parser reads them, 8-bit charsets
decoded whatever the server says, non-feeds recorded as errors."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import feedparser
import pytest
import redis

from monitor.config import FeedConfig, HttpSettings, ScheduleSettings
from monitor.ingest.feeds import canonical_url
from monitor.ingest.fetch import HttpFetcher
from monitor.ingest.items import ItemsQueue
from monitor.ingest.poll import Poller, PollReport
from monitor.model import Item, oldest_first
from monitor.store.keys import Keys

from .conftest import FIXTURES
from .feedserver import FeedServer, Reply

REAL = FIXTURES / "realfeeds"
FEEDS = sorted(REAL.rglob("*.xml"))
FEED_RS = sorted(REAL.rglob("*.serde.json"))
SCHEDULE = ScheduleSettings(interval=600, min_interval=60, max_interval=3600, jitter=0)
# What nginx (mime.types) sends for a .xml file: no charset. RFC 3023 would make that
# US-ASCII; no server means it, so the document's own declaration must win.
NGINX_XML = "text/xml"

# Test documents that are not feeds: the poll records the error, nothing is queued.
NOT_FEEDS = {
    "rss_2.0_invalid_1.xml": "not a readable feed",  # cut off by a server error, before any item
    "xml_sample_1.xml": "not a feed",  # a <catalog>
    "xml_sample_2.xml": "not a feed",
    "iso88591.xml": "not a feed",  # a <note>, from miniflux's XML-decoder tests
    "iso88591_utf8_mismatch.xml": "not a feed",
}
# feedparser's entries that never reach the stream, by design, per file:
# - EMPTY: an <item> whose title, link and description are all empty (only a date is left)
#   identifies and says nothing; parse_feed skips it.
EMPTY = {"no_encoding_ISO-8859-1.xml": 1}
# - FOLDED: an entry whose guid or canonical link repeats one earlier in the same document is
#   one article to the poller. (rss_2.0_spec_1.xml has two permalink guids whose links differ
#   only in their #fragment: two posts of one page, so both are kept — see SHARED_PAGE.)
FOLDED: dict[str, int] = {}
# Documents whose entries link to anchors of one page: each is its own item.
SHARED_PAGE = {"rss_2.0_spec_1.xml"}

# Feeds not in UTF-8, or not in what they declare: their charset, a piece of an item title,
# the channel title (checked as each item's `source`; None: ASCII, or the feed has none).
ENCODED = {
    "encoding_ISO-8859-1.xml": ("iso-8859-1", "Porträt für 432.500", None),
    "no_encoding_ISO-8859-1.xml": ("iso-8859-1", "La criminalité liée surtout à", None),
    "encoding_WINDOWS-1251.xml": ("windows-1251", "Цитата #17703", None),
    "koi8r.xml": ("koi8-r", "Первая новость", "Пример RSS ленты"),
    "rss_1.0_iso8859.xml": ("iso-8859-1", "Neue Glasfaserförderung", None),
    "xml_iso8859.xml": ("iso-8859-1", "Neue Glasfaserförderung", None),
    "rss_0.91_encoding_1.xml": (
        "iso-8859-1",
        "Expansão de Parâmetros",
        "Dicas-L: Dicas técnicas de Linux e Software Livre",
    ),
    "rss_0.91_encoding_2.xml": (
        "iso-8859-1",
        "Comitê completa 150 dias",
        "Tribunal de Justiça do Estado do Rio Grande do Sul",
    ),
    "rss_0.91_missing_id.xml": (
        "iso-8859-1",
        "PROFESOR/A TÉCNICO/A",
        "Servicio de Personal - Ingreso - Diputación de valencia",
    ),
    "rss_2.0_encoding_1.xml": (
        "iso-8859-1",
        "pontos quânticos",
        "RSS Feed do Site Inovação Tecnológica",
    ),
    # miniflux's encoding cases: UTF-8 declared as an unknown charset, as ISO-8859-1, as UTF-8
    "invalid-prolog.xml": ("utf-8", "Café", "테스트 피드"),
    "utf8-incorrect-prolog.xml": ("utf-8", "Café", "테스트 피드"),
    "utf8.xml": ("utf-8", "Café", "테스트 피드"),
}
# miniflux's channel-only encoding cases (no entries): an ASCII <item> is added so that the
# channel title shows, as the item's source. The last one is UTF-8 declared as windows-1252.
CHANNEL_ONLY = {
    "iso-8859-1.xml": ("iso-8859-1", "Café"),
    "windows-1252.xml": ("windows-1252", "Euro €"),
    "windows-1252-incorrect-prolog.xml": ("utf-8", "Euro €"),
}
# UTF-8 read as an 8-bit charset, or undecodable bytes.
MOJIBAKE = re.compile("\ufffd|Ã.|Ð.|â€")


def fixture(name: str) -> Path:
    return next(path for path in FEEDS if path.name == name)


def short(path: Path) -> str:
    """`feed-rs/rss2/rss_2.0_bbc.xml`, `miniflux/encoding/koi8r.xml`."""
    folder = path.parent.parent if path.parent.name == "testdata" else path.parent
    return f"{path.relative_to(REAL).parts[0]}/{folder.name}/{path.name}"


def normalise(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def fetcher() -> Iterator[HttpFetcher]:
    fetcher = HttpFetcher(HttpSettings(read_timeout=2.0), trusted_hosts=["127.0.0.1"])
    yield fetcher
    fetcher.close()


@dataclass
class Polling:
    """The daemon's polling path, pointed at the test server."""

    server: FeedServer
    client: redis.Redis
    poller: Poller

    def poll(self, body: bytes, content_type: str = NGINX_XML) -> tuple[PollReport, list[Item]]:
        """Serve `body`, poll it once; the report and what the items stream then holds."""
        self.server.routes["/feed.xml"] = lambda h: Reply(200, body, {"Content-Type": content_type})
        report = self.poller.poll(self.feed)
        queued = [Item.from_json(f["item"]) for _, f in self.client.xrange(Keys().items)]
        return report, queued

    @property
    def feed(self) -> FeedConfig:
        return FeedConfig(url=self.server.url("/feed.xml"))


@pytest.fixture
def polling(feed_server: FeedServer, fetcher: HttpFetcher, client: redis.Redis) -> Polling:
    items = ItemsQueue(client, Keys(), maxlen=10_000)
    return Polling(feed_server, client, Poller(client, Keys(), fetcher, items, SCHEDULE))


def empty_entries(entries: list) -> int:
    fields = ("id", "link", "title", "summary", "content")
    return sum(1 for entry in entries if not any(entry.get(f) for f in fields))


def repeated_entries(entries: list, anchors: bool = False) -> int:
    """Entries whose guid or canonical link an earlier entry of the document has (with
    `anchors`, links that differ in their fragment count as different)."""
    seen: set[str] = set()
    repeats = 0
    for entry in entries:
        link = canonical_url(entry.get("link", ""), keep_fragment=anchors)
        marks = {"g:" + entry.get("id", ""), "u:" + link}
        marks -= {"g:", "u:"}
        repeats += bool(marks & seen)
        seen |= marks
    return repeats


@pytest.mark.parametrize("path", FEEDS, ids=short)
def test_every_entry_reaches_the_items_stream_or_is_explained(path: Path, polling: Polling) -> None:
    body = path.read_bytes()
    report, queued = polling.poll(body)
    if path.name in NOT_FEEDS:
        assert NOT_FEEDS[path.name] in report.error and report.status == 200
        assert queued == []
        state = polling.poller.state(polling.feed)
        assert (state.last_error, state.errors) == (report.error, 1)
        return
    assert report.error == ""
    entries = feedparser.parse(body).entries  # the same bytes, read by feedparser alone
    # The documented differences are what the document holds, no more, no less.
    assert empty_entries(entries) == EMPTY.get(path.name, 0)
    assert repeated_entries(entries, path.name in SHARED_PAGE) == FOLDED.get(path.name, 0)
    if path.name in SHARED_PAGE:
        assert repeated_entries(entries) > 0  # the same page, without the fragments
        assert all(item.shared_page for item in queued if "#" in item.url)
    assert report.entries == len(entries) - EMPTY.get(path.name, 0)
    assert len(queued) == report.entries - FOLDED.get(path.name, 0)
    assert [i.guid for i in queued] == [i.guid for i in oldest_first(report.new)]
    for item in queued:
        assert not MOJIBAKE.search(item.title + item.source), (item.title, item.source)


@pytest.mark.parametrize("expected", FEED_RS, ids=short)
def test_titles_and_links_agree_with_feed_rs(expected: Path, polling: Polling) -> None:
    """feed-rs's parse of the same document (`<name>.serde.json`) is an independent reading.
    Every title agrees, absent ones too; no exceptions are needed."""
    path = expected.with_name(expected.name.replace(".serde.json", ".xml"))
    if not path.exists():  # a JSON Feed
        path = expected.with_name(expected.name.replace(".serde.json", ".json"))
    report, queued = polling.poll(path.read_bytes())
    listed = {(i.guid, i.url, i.title): n for n, i in enumerate(report.new)}
    queued = sorted(queued, key=lambda i: listed[i.guid, i.url, i.title])  # queued oldest first
    wanted = json.loads(expected.read_text(encoding="utf-8"))["entries"]
    if path.name in FOLDED:  # only the entries the poller kept
        wanted = [entry for entry in wanted if entry["id"] in {i.guid for i in queued}]
    assert len(queued) == len(wanted)
    for item, entry in zip(queued, wanted, strict=True):
        assert normalise(item.title) == normalise((entry["title"] or {}).get("content", ""))
        links = [link["href"] for link in entry["links"] if link.get("rel") in (None, "alternate")]
        if links:  # (relative in the file: resolved against the feed's URL)
            resolved = {canonical_url(urljoin(item.feed, link)) for link in links}
            assert canonical_url(item.url) in resolved


# What servers send: no charset (nginx), a blanket charset that is wrong for an 8-bit file
# (application servers), the right one.
CONTENT_TYPES = {
    "no-charset": lambda charset: NGINX_XML,
    "wrong-charset": lambda charset: "application/rss+xml; charset=utf-8",
    "right-charset": lambda charset: f"application/rss+xml; charset={charset}",
}


@pytest.mark.parametrize("served_as", CONTENT_TYPES)
@pytest.mark.parametrize("name", ENCODED)
def test_8bit_titles_decode_whatever_the_server_says(
    name: str, served_as: str, polling: Polling
) -> None:
    charset, in_title, channel = ENCODED[name]
    report, queued = polling.poll(fixture(name).read_bytes(), CONTENT_TYPES[served_as](charset))
    assert report.error == ""
    assert any(in_title in item.title for item in queued)
    if channel:
        assert {normalise(item.source) for item in queued} == {channel}
    for item in queued:
        assert not MOJIBAKE.search(item.title + item.source), (item.title, item.source)


@pytest.mark.parametrize("served_as", CONTENT_TYPES)
@pytest.mark.parametrize("name", CHANNEL_ONLY)
def test_8bit_channel_titles_decode_whatever_the_server_says(
    name: str, served_as: str, polling: Polling
) -> None:
    charset, channel = CHANNEL_ONLY[name]
    body = fixture(name).read_bytes()
    with_item = body.replace(b"</channel>", b"<item><guid>urn:test:1</guid></item></channel>")
    report, queued = polling.poll(with_item, CONTENT_TYPES[served_as](charset))
    assert report.error == ""
    assert [(item.guid, item.source) for item in queued] == [("urn:test:1", channel)]


@pytest.mark.parametrize(
    "content_type",
    ["application/rss+xml; charset=utf-8", "text/html; charset=UTF-8", "application/octet-stream"],
)
@pytest.mark.parametrize("name", CHANNEL_ONLY)
def test_an_empty_feed_is_not_an_error_whatever_the_server_calls_it(
    name: str, content_type: str, polling: Polling
) -> None:
    """A feed with no entries yet is a feed: a wrong media type or charset from the server
    must not count as a failed poll (and push the next one back)."""
    report, queued = polling.poll(fixture(name).read_bytes(), content_type)
    assert (report.status, report.error, queued) == (200, "", [])
    assert polling.poller.state(polling.feed).errors == 0
