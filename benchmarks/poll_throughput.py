"""Polling throughput: `monitor run` against 10,000 feeds on a loopback server, mostly 304s.

Every feed already has an ETag and is due now (its state is written to Redis first), so the
daemon starts with 10,000 conditional GETs to make at once: the figure is how fast it gets
through them, and its peak RSS. Target (issue 3): >= 500 polls/s on 2 cores, <= 300 MB.

    python benchmarks/poll_throughput.py [--feeds 10000] [--workers 32]
"""

from __future__ import annotations

import argparse
import signal
import tempfile
import time
from pathlib import Path

import redis
from _support import http_server, peak_rss_mb, redis_server, report, start_daemon

from monitor.config import FeedConfig
from monitor.keys import Keys
from monitor.poll import feed_id

ETAG = '"v1"'
EMPTY = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'


def handler(path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    if headers.get("if-none-match") == ETAG:
        return 304, {"ETag": ETAG}, b""
    return 200, {"ETag": ETAG, "Content-Type": "application/rss+xml"}, EMPTY


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--feeds", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=32)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="monitor-poll-bench-"))
    (work / "rules").mkdir()
    with redis_server() as redis_url, http_server(handler) as base:
        feeds = [FeedConfig(url=f"{base}/feed/{n}.xml", interval=3600) for n in range(args.feeds)]
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        keys = Keys()
        now = time.time()
        pipe = client.pipeline(transaction=False)
        for feed in feeds:  # as if each had been polled once: a 304 is due for all
            pipe.hset(keys.feed(feed_id(feed)), mapping={
                "url": feed.url, "etag": ETAG, "interval": 3600, "next_poll": now, "polls": 1,
            })  # fmt: skip
        pipe.execute()
        config = work / "monitor.toml"
        config.write_text(
            f'rules_dir = "{work / "rules"}"\nlog_level = "warning"\n'
            f"[schedule]\nworkers = {args.workers}\n"
            f"[http]\nper_host = {args.workers}\n"  # one loopback host stands for many
            '[daemon]\nlisten = ""\n'
            + "".join(f'[[feeds]]\nurl = "{f.url}"\ninterval = 3600\n' for f in feeds)
        )
        daemon = start_daemon(config, redis_url, work / "daemon.log")
        started = time.monotonic()
        first = None
        while True:
            time.sleep(1.0)  # reading 10k hashes costs CPU the daemon shares: not too often
            polled = sum(
                1 for p in _polls(client, keys, feeds) if p >= 2
            )  # polls: 1 written above, 2 after the daemon's poll
            if polled and first is None:
                first = time.monotonic()
            if polled >= len(feeds) or time.monotonic() - started > 600:
                break
        elapsed = time.monotonic() - (first or started)
        rss = peak_rss_mb(daemon.pid)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
        report(
            "poll_throughput",
            feeds=len(feeds),
            polled=polled,
            workers=args.workers,
            seconds_from_first_poll=round(elapsed, 2),
            startup_seconds=round((first or started) - started, 2),
            polls_per_second=round(polled / elapsed, 1),
            peak_rss_mb=round(rss, 1),
        )


def _polls(client: redis.Redis, keys: Keys, feeds: list[FeedConfig]) -> list[int]:
    pipe = client.pipeline(transaction=False)
    for feed in feeds:
        pipe.hget(keys.feed(feed_id(feed)), "polls")
    return [int(float(v or 0)) for v in pipe.execute()]


if __name__ == "__main__":
    main()
