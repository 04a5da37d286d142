"""Polling throughput: `monitor run` against 10,000 feeds on a loopback server, all 304s.

Every feed already has an ETag and is due now (its state is written to Redis first), so the
daemon starts with 10,000 conditional GETs to make at once: the figure is how fast it gets
through them (from the polls' own start times, stored in each feed's state), and the
daemon's peak RSS. Target (issue 20): >= 1,000 polls/s on 2 cores, <= 150 MB.

    python benchmarks/poll_throughput.py [--feeds 10000] [--workers 32] [--rounds 1]
        [--baseline DIR]

`--baseline DIR` also runs the `monitor` package of another checkout (e.g. made with
`git worktree add /tmp/base main`; its dependencies installed in this environment), in
alternating rounds against the same servers, and prints both.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis
from _support import http_server, peak_rss_mb, redis_server, report, start_daemon

from monitor.config import FeedConfig
from monitor.ingest.poll import feed_id
from monitor.store.keys import Keys

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
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--baseline", type=Path, help="another checkout, run alternately")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="monitor-poll-bench-"))
    (work / "rules").mkdir()
    versions: list[Path | None] = [None] if args.baseline is None else [args.baseline, None]
    with redis_server() as redis_url, http_server(handler) as base:
        feeds = [FeedConfig(url=f"{base}/feed/{n}.xml", interval=3600) for n in range(args.feeds)]
        config = work / "monitor.toml"
        config.write_text(
            f'rules_dir = "{work / "rules"}"\nlog_level = "warning"\n'
            f"[schedule]\nworkers = {args.workers}\n"
            f"[http]\nper_host = {args.workers}\n"  # one loopback host stands for many
            '[daemon]\nlisten = ""\n'
            + "".join(f'[[feeds]]\nurl = "{f.url}"\ninterval = 3600\n' for f in feeds)
        )
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        for _ in range(args.rounds):
            for code in versions:
                figures = run(client, feeds, config, redis_url, work, code)
                report("poll_throughput", code=_describe(code), workers=args.workers, **figures)


def run(
    client: redis.Redis,
    feeds: list[FeedConfig],
    config: Path,
    redis_url: str,
    work: Path,
    code: Path | None,
) -> dict[str, object]:
    keys = Keys()
    client.flushdb()  # leases and states of a previous round
    now = time.time()
    pipe = client.pipeline(transaction=False)
    for feed in feeds:  # as if each had been polled once: a 304 is due for all
        pipe.hset(
            keys.feed(feed_id(feed)),
            mapping={
                "url": feed.url,
                "etag": ETAG,
                "interval": 3600,
                "next_poll": now,
                "polls": 1,
            },
        )
    pipe.execute()
    daemon = start_daemon(config, redis_url, work / "daemon.log", code=code)
    started = time.monotonic()
    first = None
    cpu_first, polled_first = 0.0, 0
    while True:
        time.sleep(1.0)  # reading 10k hashes costs CPU the daemon shares: not too often
        states = _states(client, keys, feeds)
        polled = sum(1 for polls, _ in states if polls >= 2)  # 1 written above, 2 after
        if polled and first is None:
            first, cpu_first, polled_first = time.monotonic(), _cpu_seconds(daemon.pid), polled
        if polled >= len(feeds) or time.monotonic() - started > 600:
            break
    rss = peak_rss_mb(daemon.pid)
    cpu = _cpu_seconds(daemon.pid) - cpu_first
    daemon.send_signal(signal.SIGTERM)
    daemon.wait(timeout=60)
    stamps = sorted(at for polls, at in states if polls >= 2)
    span = stamps[-1] - stamps[0] if len(stamps) > 1 else float("nan")
    return {
        "feeds": len(feeds),
        "polled": polled,
        "startup_seconds": round((first or started) - started, 2),
        "seconds_first_to_last_poll": round(span, 2),
        "polls_per_second": round((len(stamps) - 1) / span, 1),
        "daemon_cpu_ms_per_poll": round(1000 * cpu / max(1, polled - polled_first), 3),
        "peak_rss_mb": round(rss, 1),
    }


def _states(client: redis.Redis, keys: Keys, feeds: list[FeedConfig]) -> list[tuple[int, float]]:
    """Each feed's poll count and last poll's start time."""
    pipe = client.pipeline(transaction=False)
    for feed in feeds:
        pipe.hmget(keys.feed(feed_id(feed)), "polls", "last_poll")
    return [(int(float(p or 0)), float(t or 0)) for p, t in pipe.execute()]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _describe(code: Path | None) -> str:
    if code is None:
        return "this checkout"
    rev = subprocess.run(
        ["git", "-C", str(code), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return f"{code} ({rev.stdout.strip() or 'not a git checkout'})"


if __name__ == "__main__":
    main()
