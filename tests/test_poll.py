"""Polling real HTTP feeds on 127.0.0.1 into a real Redis."""

from __future__ import annotations

import time

import pytest
import redis
from structlog.testing import capture_logs

from monitor.config import FeedConfig, HttpSettings, ScheduleSettings
from monitor.ingest.fetch import HttpFetcher
from monitor.ingest.items import ItemsQueue
from monitor.ingest.poll import Poller
from monitor.store.keys import Keys

from .feedserver import FeedServer, Reply, rss

SCHEDULE = ScheduleSettings(interval=600, min_interval=60, max_interval=3600, jitter=0)


def entries(n: int, start: int = 0) -> list[dict[str, str]]:
    return [
        {
            "title": f"Story {i}",
            "link": f"http://example.org/{i}",
            "guid": f"urn:story:{i}",
            "description": "Short summary.",
            "pubDate": "Wed, 19 Jun 2024 10:00:00 GMT",
        }
        for i in range(start, start + n)
    ]


@pytest.fixture
def poller(client: redis.Redis):
    settings = HttpSettings(read_timeout=1.0, connect_timeout=1.0, max_bytes=200_000)
    fetcher = HttpFetcher(settings, trusted_hosts=["127.0.0.1"])  # the test server
    items = ItemsQueue(client, Keys(), maxlen=10_000)
    yield Poller(client, Keys(), fetcher, items, SCHEDULE)
    fetcher.close()


def test_new_entries_then_304_then_only_the_added_one(
    feed_server: FeedServer, poller: Poller, client: redis.Redis
) -> None:
    feed = FeedConfig(url=feed_server.url("/feed.xml"))
    feed_server.static("/feed.xml", rss(entries(3)))
    first = poller.poll(feed)
    assert (first.status, len(first.new), first.error) == (200, 3, "")
    assert client.xlen(Keys().items) == 3

    second = poller.poll(feed)
    assert (second.status, second.new) == (304, [])
    assert feed_server.requests[-1][1]["if-none-match"]  # the ETag went back

    feed_server.static("/feed.xml", rss(entries(4)))
    third = poller.poll(feed)
    assert [i.guid for i in third.new] == ["urn:story:3"]
    assert client.xlen(Keys().items) == 4
    state = poller.state(feed)
    assert (state.polls, state.total_items, state.errors, state.last_status) == (3, 4, 0, 200)


def test_last_modified_is_sent_back(feed_server: FeedServer, poller: Poller) -> None:
    stamp = "Wed, 19 Jun 2024 10:00:00 GMT"

    def route(headers: dict[str, str]) -> Reply:
        if headers.get("if-modified-since") == stamp:
            return Reply(304)
        return Reply(200, rss(entries(1)), {"Last-Modified": stamp})

    feed_server.routes["/lm.xml"] = route
    feed = FeedConfig(url=feed_server.url("/lm.xml"))
    assert poller.poll(feed).status == 200
    assert poller.poll(feed).status == 304


def test_gzip_is_accepted(feed_server: FeedServer, poller: Poller) -> None:
    feed_server.routes["/gz.xml"] = lambda h: Reply(200, rss(entries(2)), gzip=True)
    report = poller.poll(FeedConfig(url=feed_server.url("/gz.xml")))
    assert len(report.new) == 2
    assert "gzip" in feed_server.requests[-1][1]["accept-encoding"]


def test_a_permanent_redirect_moves_the_feed(feed_server: FeedServer, poller: Poller) -> None:
    feed_server.routes["/old.xml"] = lambda h: Reply(301, headers={"Location": "/new.xml"})
    feed_server.static("/new.xml", rss(entries(1)))
    feed = FeedConfig(url=feed_server.url("/old.xml"))
    assert len(poller.poll(feed).new) == 1
    assert poller.state(feed).url == feed_server.url("/new.xml")
    poller.poll(feed)
    assert feed_server.hits("/old.xml") == 1  # not asked again


def test_a_temporary_redirect_does_not(feed_server: FeedServer, poller: Poller) -> None:
    feed_server.routes["/tmp.xml"] = lambda h: Reply(302, headers={"Location": "/real.xml"})
    feed_server.static("/real.xml", rss(entries(1)))
    feed = FeedConfig(url=feed_server.url("/tmp.xml"))
    poller.poll(feed)
    assert poller.state(feed).url == feed.url


def test_429_waits_as_long_as_retry_after_says(feed_server: FeedServer, poller: Poller) -> None:
    feed_server.routes["/busy.xml"] = lambda h: Reply(429, headers={"Retry-After": "7200"})
    before = time.time()
    report = poller.poll(FeedConfig(url=feed_server.url("/busy.xml")))
    assert report.error == "HTTP 429"
    assert report.next_poll >= before + 7200


def test_errors_back_off_and_recover(feed_server: FeedServer, poller: Poller) -> None:
    feed_server.routes["/bad.xml"] = lambda h: Reply(500, b"oops")
    feed = FeedConfig(url=feed_server.url("/bad.xml"))
    now = 1_000_000.0
    gaps = []
    for _ in range(3):
        report = poller.poll(feed, now)
        gaps.append(report.next_poll - now)
    assert gaps == [1200, 2400, 4800]  # 600 s doubling per consecutive error
    assert poller.state(feed).errors == 3
    feed_server.static("/bad.xml", rss(entries(1)))
    assert poller.poll(feed, now).error == ""
    assert poller.state(feed).errors == 0 and poller.state(feed).total_errors == 3


def test_a_slow_server_times_out(feed_server: FeedServer, poller: Poller) -> None:
    feed_server.routes["/slow.xml"] = lambda h: Reply(200, rss(entries(1)), delay=5)
    started = time.monotonic()
    report = poller.poll(FeedConfig(url=feed_server.url("/slow.xml")))
    assert "timed out" in report.error
    assert time.monotonic() - started < 4


def test_an_oversized_body_is_refused(feed_server: FeedServer, poller: Poller) -> None:
    feed_server.routes["/big.xml"] = lambda h: Reply(200, rss(entries(3000)))
    report = poller.poll(FeedConfig(url=feed_server.url("/big.xml")))
    assert "exceeds" in report.error and report.new == []
    feed_server.routes["/bomb.xml"] = lambda h: Reply(200, b"<rss>" + b" " * 5_000_000, gzip=True)
    assert "exceeds" in poller.poll(FeedConfig(url=feed_server.url("/bomb.xml"))).error


def test_ill_formed_feeds(feed_server: FeedServer, poller: Poller) -> None:
    broken = rss(entries(2)).replace(b"Story 1", b"Story & 1")  # an unescaped &
    feed_server.routes["/amp.xml"] = lambda h: Reply(200, broken)
    with capture_logs() as logs:
        report = poller.poll(FeedConfig(url=feed_server.url("/amp.xml")))
    assert len(report.new) == 2 and report.error == ""
    assert any(e["event"] == "feed_ill_formed" for e in logs)

    feed_server.routes["/html.xml"] = lambda h: Reply(200, b"<html><body><p>Hi</p></body></html>")
    report = poller.poll(FeedConfig(url=feed_server.url("/html.xml")))
    assert "not a" in report.error


def test_the_same_entry_by_canonical_url_is_not_new(
    feed_server: FeedServer, poller: Poller
) -> None:
    one = entries(1)
    feed_server.static("/a.xml", rss(one))
    feed = FeedConfig(url=feed_server.url("/a.xml"))
    poller.poll(feed)
    moved = [{**one[0], "guid": "urn:other", "link": one[0]["link"] + "?utm_source=rss"}]
    feed_server.static("/a.xml", rss(moved))
    assert poller.poll(feed).new == []


def test_connection_refused_is_an_error_not_a_crash(poller: Poller) -> None:
    report = poller.poll(FeedConfig(url="http://127.0.0.1:9/feed.xml"))
    assert report.status == 0 and report.error


def test_unusable_urls_and_stacked_codings_are_fetch_errors(feed_server: FeedServer) -> None:
    from monitor.errors import FetchError

    fetcher = HttpFetcher(HttpSettings(read_timeout=1.0, connect_timeout=1.0, allow_private=True))
    try:
        for url in ("http://a..b/x", "http://[::1/feed", "http://example.com:99999/a"):
            with pytest.raises(FetchError):
                fetcher.get(url)
        feed_server.routes["/two.xml"] = lambda h: Reply(
            200, b"x", headers={"Content-Encoding": "gzip, gzip"}
        )
        with pytest.raises(FetchError, match="more than one content coding"):
            fetcher.get(feed_server.url("/two.xml"))
    finally:
        fetcher.close()


def test_link_less_entries_stay_distinct(feed_server: FeedServer, poller: Poller) -> None:
    items = [{"title": f"T{i}", "guid": f"urn:x:{i}", "description": "d"} for i in range(3)]
    feed_server.static("/nolinks.xml", rss(items))
    report = poller.poll(FeedConfig(url=feed_server.url("/nolinks.xml")))
    assert [i.guid for i in report.new] == ["urn:x:0", "urn:x:1", "urn:x:2"]
    # A non-permalink-looking guid (urn:) is not a link: no URL, rather than the feed's own
    # URL for all of them, or the urn fetched as a page.
    assert {i.url for i in report.new} == {""}


def test_a_server_trickling_its_headers_hits_the_total_deadline() -> None:
    import socket
    import threading

    from monitor.errors import FetchError

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def trickle() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(4096)
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100:
                if stop.wait(0.3):
                    return
                connection.send(bytes([byte]))  # each byte well within read_timeout

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    fetcher = HttpFetcher(HttpSettings(read_timeout=1.0, connect_timeout=1.0, allow_private=True))
    started = time.monotonic()
    try:
        with pytest.raises(FetchError, match="no complete answer within 3 s"):
            fetcher.get(f"http://127.0.0.1:{listener.getsockname()[1]}/feed.xml")
        assert time.monotonic() - started < 6
    finally:
        stop.set()
        fetcher.close()
        listener.close()


def test_the_address_guard(feed_server: FeedServer) -> None:
    from monitor.errors import FetchError

    feed_server.static("/f.xml", rss(entries(1)))
    port = feed_server.httpd.server_address[1]
    feed_server.routes["/to-localhost"] = lambda h: Reply(
        302, headers={"Location": f"http://localhost:{port}/f.xml"}
    )
    guarded = HttpFetcher(HttpSettings(read_timeout=1.0))
    trusting = HttpFetcher(HttpSettings(read_timeout=1.0), trusted_hosts=["127.0.0.1"])
    allowed = HttpFetcher(HttpSettings(read_timeout=1.0, allow_hosts=("localhost", "127.0.0.1")))
    try:
        with pytest.raises(FetchError, match=r"refused: 127\.0\.0\.1 is a non-public address"):
            guarded.get(feed_server.url("/f.xml"))
        for url in ("http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/"):
            with pytest.raises(FetchError, match="non-public address"):
                guarded.get(url)
        assert trusting.get(feed_server.url("/f.xml")).status == 200  # a configured feed's host
        with pytest.raises(FetchError, match="refused: localhost"):  # a redirect is checked too
            trusting.get(feed_server.url("/to-localhost"))
        assert allowed.get(feed_server.url("/to-localhost")).status == 200
    finally:
        for fetcher in (guarded, trusting, allowed):
            fetcher.close()


def test_a_polls_new_entries_enter_the_stream_oldest_first(
    feed_server: FeedServer, poller: Poller, client: redis.Redis
) -> None:
    listed = entries(3)  # newest first, as most feeds list them
    for n, entry in enumerate(listed):
        entry["pubDate"] = f"Wed, 19 Jun 2024 1{2 - n}:00:00 GMT"
    feed_server.static("/feed.xml", rss(listed))
    polled = poller.poll(FeedConfig(url=feed_server.url("/feed.xml")))
    assert [i.guid for i in polled.new] == ["urn:story:0", "urn:story:1", "urn:story:2"]
    queue = ItemsQueue(client, Keys(), maxlen=10_000)
    queue.ensure_group()
    queued = queue.read("c", count=10, block_ms=1)
    assert [entry.value.guid for entry in queued if entry.value] == [
        "urn:story:2",
        "urn:story:1",
        "urn:story:0",
    ]
