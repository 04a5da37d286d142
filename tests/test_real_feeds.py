"""Real-world feeds (tests/fixtures/realfeeds: miniflux and feed-rs test data) served over
HTTP and polled through the daemon's path into the items stream: no entry lost, titles and
links intact whatever the encoding."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import feedparser
import pytest
import redis

from monitor.config import FeedConfig, HttpSettings
from monitor.feeds import canonical_url
from monitor.fetch import HttpFetcher
from monitor.keys import Keys
from monitor.model import Item
from monitor.poll import Poller
from monitor.queue import ItemsQueue

from .conftest import FIXTURES
from .feedserver import FeedServer, Reply
from .test_poll import SCHEDULE

REAL = FIXTURES / "realfeeds"
FEEDS = sorted(REAL.rglob("*.xml"))

# Test documents that are not feeds at all: the poll records the error, nothing is queued.
NOT_FEEDS = {
    "rss_2.0_invalid_1.xml": "not a readable feed",  # truncated before its first entry
    "xml_sample_1.xml": "not a feed",  # generic XML
    "xml_sample_2.xml": "not a feed",
    "iso88591.xml": "not a feed",  # miniflux's XML-decoder fixtures
    "iso88591_utf8_mismatch.xml": "not a readable feed",
}
# Where the items differ in number from feedparser's entries, and why.
FEWER = {
    "rss_2.0_spec_1.xml": 1,  # two links that differ only in their #fragment: one article
    "no_encoding_ISO-8859-1.xml": 1,  # an empty <item> (a date, nothing else) is skipped
}
# Feeds written in an 8-bit charset: their titles must decode to these words.
DECODED = {
    "encoding_ISO-8859-1.xml": "ü",
    "no_encoding_ISO-8859-1.xml": "é",
    "encoding_WINDOWS-1251.xml": "Ц",
    "koi8r.xml": "Первая новость",
    "rss_1.0_iso8859.xml": "Glasfaserförderung",
    "xml_iso8859.xml": "Glasfaserförderung",
    "rss_0.91_encoding_1.xml": "Expansão de Parâmetros",
}
MOJIBAKE = re.compile("[\ufffd]|Ã.|Ð.|â€")


@pytest.fixture(scope="module")
def fetcher() -> Iterator[HttpFetcher]:
    fetcher = HttpFetcher(HttpSettings(read_timeout=2.0), trusted_hosts=["127.0.0.1"])
    yield fetcher
    fetcher.close()


def normalise(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("path", FEEDS, ids=lambda p: p.name)
def test_every_entry_reaches_the_items_stream_intact(
    path: Path, feed_server: FeedServer, fetcher: HttpFetcher, client: redis.Redis
) -> None:
    poller = Poller(client, Keys(), fetcher, ItemsQueue(client, Keys(), maxlen=10_000), SCHEDULE)
    body = path.read_bytes()
    feed_server.routes["/feed.xml"] = lambda h: Reply(200, body, {"Content-Type": "text/xml"})
    report = poller.poll(FeedConfig(url=feed_server.url("/feed.xml")))
    queued = [Item.from_json(f["item"]) for _, f in client.xrange("monitor:items")]
    if path.name in NOT_FEEDS:
        assert NOT_FEEDS[path.name] in report.error
        assert queued == []
        return
    assert report.error == ""
    entries = feedparser.parse(body).entries
    assert len(queued) == len(entries) - FEWER.get(path.name, 0)
    for item in queued:
        assert not MOJIBAKE.search(item.title), item.title
    if path.name in DECODED:
        assert any(DECODED[path.name] in item.title for item in queued)

    expected = path.with_name(path.stem + ".serde.json")
    if expected.exists() and path.name not in FEWER:  # feed-rs's parse: an independent reading
        wanted = json.loads(expected.read_text(encoding="utf-8"))["entries"]
        for item, entry in zip(queued, wanted, strict=True):
            if entry.get("title"):
                assert normalise(item.title) == normalise(entry["title"]["content"])
            links = [
                link["href"] for link in entry["links"] if link.get("rel") in (None, "alternate")
            ]
            if links:  # (relative in the file: resolved against the feed's URL)
                assert canonical_url(item.url) in {
                    canonical_url(urljoin(item.feed, link)) for link in links
                }
