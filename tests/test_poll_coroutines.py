"""Polls as coroutines on the HTTP loop: the daemon's scheduler against real loopback
servers and a real Redis — politeness per host, the hard total deadline, one slow feed not
holding up the others — and the batched Redis commands the polls use."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis

from monitor.config import DaemonSettings, FeedConfig, HttpSettings, ScheduleSettings, Settings
from monitor.daemon.health import Health
from monitor.daemon.metrics import Metrics
from monitor.daemon.scheduler import Scheduler
from monitor.ingest.fetch import HttpFetcher
from monitor.ingest.items import ItemsQueue
from monitor.ingest.poll import FeedState, feed_id
from monitor.store.batched import BatchedRedis
from monitor.store.keys import Keys

from .feedserver import FeedServer, Reply, rss
from .processes import wait_for


@contextmanager
def scheduler(settings: Settings, client: redis.Redis) -> Iterator[Scheduler]:
    fetcher = HttpFetcher(settings.http)
    metrics = Metrics()
    polling = Scheduler(
        settings,
        client,
        instance="test",
        fetcher=fetcher,
        items=ItemsQueue(client, Keys(), maxlen=10_000),
        metrics=metrics,
        health=Health(metrics, "test"),
    )
    polling.start()
    try:
        yield polling
    finally:
        polling.shutdown()
        fetcher.close()


def state(client: redis.Redis, url: str) -> FeedState:
    return FeedState.from_hash(client.hgetall(Keys().feed(feed_id(FeedConfig(url=url)))))


def test_at_most_per_host_requests_to_one_host_while_other_hosts_go_on(
    feed_server: FeedServer, client: redis.Redis
) -> None:
    lock = threading.Lock()
    now: dict[str, int] = {}
    peak: dict[str, int] = {}
    both = []  # requests started while the other host had one in flight

    def slow(headers: dict[str, str]) -> Reply:
        host = headers["host"].split(":")[0]
        with lock:
            now[host] = now.get(host, 0) + 1
            peak[host] = max(peak.get(host, 0), now[host])
            both.append(all(now.get(h, 0) for h in ("127.0.0.1", "localhost")))
        time.sleep(0.25)
        with lock:
            now[host] -= 1
        return Reply(200, rss([]), {"Content-Type": "application/rss+xml"})

    port = feed_server.httpd.server_address[1]
    urls = [f"http://127.0.0.1:{port}/p{n}.xml" for n in range(8)]
    urls += [f"http://localhost:{port}/q{n}.xml" for n in range(4)]
    for url in urls:
        feed_server.routes[url.split(str(port))[1]] = slow
    settings = Settings(
        http=HttpSettings(per_host=2, read_timeout=5.0),
        schedule=ScheduleSettings(interval=3600, workers=16, jitter=0),
        daemon=DaemonSettings(listen=""),
        feeds=tuple(FeedConfig(url=url, interval=3600) for url in urls),
    )
    due = time.time() + 0.5  # all at once (a first poll otherwise comes within 2 s, at random)
    for url in urls:
        client.hset(Keys().feed(feed_id(FeedConfig(url=url))), "next_poll", due)
    with scheduler(settings, client):
        wait_for(lambda: all(state(client, url).polls == 1 for url in urls), 20)
    assert peak == {"127.0.0.1": 2, "localhost": 2}
    assert any(both)  # one host's cap does not hold up another host


@pytest.fixture
def trickling() -> Iterator[str]:
    """A server that sends its status line and headers one byte every 0.3 s, for ever:
    each read well within read_timeout, the whole answer never."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                connection.recv(4096)
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1000:
                    if stop.wait(0.3):
                        return
                    try:
                        connection.send(bytes([byte]))
                    except OSError:
                        break

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/feed.xml"
    stop.set()
    listener.close()


@pytest.mark.slow
def test_the_total_deadline_holds_and_a_slow_feed_does_not_hold_up_the_others(
    feed_server: FeedServer, trickling: str, client: redis.Redis
) -> None:
    fast = [feed_server.url(f"/f{n}.xml") for n in range(5)]
    for url in fast:
        feed_server.static(url.rsplit(str(feed_server.httpd.server_address[1]), 1)[1], rss([]))
    settings = Settings(
        http=HttpSettings(connect_timeout=1.0, read_timeout=1.0),
        schedule=ScheduleSettings(interval=3600, workers=4, jitter=0),
        daemon=DaemonSettings(listen=""),
        feeds=tuple(FeedConfig(url=url, interval=3600) for url in [trickling, *fast]),
    )
    started = time.monotonic()
    with scheduler(settings, client):
        # The fast feeds are polled while the trickling one is still in flight.
        wait_for(lambda: all(state(client, url).polls == 1 for url in fast), 10)
        assert state(client, trickling).polls == 0
        wait_for(lambda: state(client, trickling).polls == 1, 10)
        took = time.monotonic() - started
    slow = state(client, trickling)
    assert slow.last_error == "no complete answer within 3 s"
    assert slow.errors == 1 and slow.last_status == 0
    assert took < 3 + 2 + 2  # the deadline, the first poll's random delay (0-2 s), slack
    assert all(state(client, url).last_status == 200 for url in fast)


def test_a_feed_polled_by_another_daemon_meanwhile_is_left_alone(
    feed_server: FeedServer, client: redis.Redis
) -> None:
    feed_server.static("/a.xml", rss([]))
    feed_server.static("/b.xml", rss([]))
    a, b = feed_server.url("/a.xml"), feed_server.url("/b.xml")
    # Another daemon holds a's lease.
    client.set(Keys().lease(feed_id(FeedConfig(url=a))), "other", px=60_000)
    settings = Settings(
        schedule=ScheduleSettings(interval=3600, jitter=0),
        daemon=DaemonSettings(listen=""),
        feeds=(FeedConfig(url=a, interval=3600), FeedConfig(url=b, interval=3600)),
    )
    with scheduler(settings, client):
        wait_for(lambda: state(client, b).polls == 1, 10)
        time.sleep(0.5)
    assert feed_server.hits("/a.xml") == 0 and state(client, a).polls == 0


def test_batched_commands_each_get_their_own_replies_and_errors(client: redis.Redis) -> None:
    client.set("text", "not a number")
    io = BatchedRedis(client)

    async def main() -> list[object]:
        return await asyncio.gather(
            *(io(lambda p, n=n: (p.set(f"k{n}", n), p.get(f"k{n}"))) for n in range(50)),
            io(lambda p: p.incr("text")),
            io(lambda p: p.incr("counter")),
            return_exceptions=True,
        )

    *pairs, failed, counted = asyncio.run(main())
    assert pairs == [[True, str(n)] for n in range(50)]
    assert isinstance(failed, redis.ResponseError)
    assert counted == [1]


def test_batched_commands_raise_when_redis_is_unreachable(tmp_path) -> None:
    gone = redis.Redis(unix_socket_path=str(tmp_path / "none.sock"), decode_responses=True)
    io = BatchedRedis(gone)

    async def main() -> None:
        await io(lambda p: p.get("x"))

    with pytest.raises(redis.ConnectionError):
        asyncio.run(main())
