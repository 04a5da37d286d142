"""Soak: `monitor run` for a long time against a loopback feed server whose feeds keep
changing; the daemon's RSS is sampled throughout. Target (issue 7): flat RSS.

The server holds --feeds feeds of the last 30 items each; new items arrive at --rate per
second on random feeds (each with its page: generated article HTML, one in ten about a
DPRK-Russia treaty so that the project's rules alert), unchanged feeds answer 304 to the
daemon's conditional GET, and one feed in twenty answers 500.

    python benchmarks/soak.py [--minutes 30] [--feeds 100] [--rate 2]
"""

from __future__ import annotations

import argparse
import random
import re
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path

import httpx
import redis
from _support import ROOT, http_server, peak_rss_mb, redis_server, report, start_daemon

SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
WORDS = [a + b + "n" for a in SYLLABLES for b in SYLLABLES]  # 4,900 made-up words
TOPIC = "Pyongyang and Moscow signed a mutual defence treaty, state media said."


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def slope_per_10_min(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) in MB per 10 minutes."""
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    num = sum((t - mean_t) * (v - mean_v) for t, v in samples)
    den = sum((t - mean_t) ** 2 for t, _ in samples)
    return num / den * 600 if den else 0.0


def metric(text: str, name: str) -> float:
    total = 0.0
    for found in re.finditer(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE):
        total += float(found.group(1))
    return total


class Feeds:
    """The changing feeds and their pages, shared with the server's threads."""

    def __init__(self, count: int, rng: random.Random) -> None:
        self.rng = rng
        self.lock = threading.Lock()
        self.items: list[list[str]] = [[] for _ in range(count)]
        self.version = [0] * count
        self.pages: dict[str, bytes] = {}
        self.added = 0

    def add(self, base: str) -> None:
        with self.lock:
            n = self.added
            self.added += 1
            feed = self.rng.randrange(len(self.items))
            topic = self.rng.sample(WORDS, 30)
            words = [
                self.rng.choice(topic if self.rng.random() < 0.6 else WORDS) for _ in range(400)
            ]
            text = " ".join(words) + "." + (" " + TOPIC if n % 10 == 0 else "")
            title = " ".join(words[:7]).capitalize()
            self.pages[f"/p/{n}.html"] = (
                f"<html><head><title>{title}</title></head><body><nav>Home World</nav>"
                f"<article><h1>{title}</h1><p>{text}</p></article><footer>(c) soak</footer>"
                "</body></html>"
            ).encode()
            self.items[feed].insert(
                0,
                f"<item><title>{title}</title><link>{base}/p/{n}.html</link>"
                f"<guid>urn:soak:{n}</guid><description>{title}</description></item>",
            )
            dropped = self.items[feed][30:]
            del self.items[feed][30:]
            for item in dropped:  # pages of items gone from every feed go too
                self.pages.pop(item.split("<link>")[1].split("</link>")[0][len(base) :], None)
            self.version[feed] += 1

    def handle(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            if path.startswith("/f/"):
                feed = int(path[3:].split(".")[0])
                if feed % 20 == 19:
                    return 500, {}, b"server error"
                etag = f'"{self.version[feed]}"'
                if headers.get("if-none-match") == etag:
                    return 304, {"ETag": etag}, b""
                body = ('<?xml version="1.0"?><rss version="2.0"><channel><title>soak</title>'
                        + "".join(self.items[feed]) + "</channel></rss>").encode()  # fmt: skip
                return 200, {"ETag": etag, "Content-Type": "application/rss+xml"}, body
            page = self.pages.get(path)
        if page is None:
            return 404, {}, b""
        return 200, {"Content-Type": "text/html"}, page


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--feeds", type=int, default=100)
    parser.add_argument("--rate", type=float, default=2.0, help="new items per second")
    parser.add_argument("--interval", type=float, default=5.0, help="poll interval, seconds")
    args = parser.parse_args()
    feeds = Feeds(args.feeds, random.Random(11))
    work = Path(tempfile.mkdtemp(prefix="monitor-soak-"))
    stop = threading.Event()
    with socket.socket() as probe:  # a free port for the daemon's /metrics
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with redis_server() as redis_url, http_server(feeds.handle) as base:
        config = work / "monitor.toml"
        config.write_text(
            f'rules_dir = "{ROOT / "rules"}"\nlog_level = "warning"\n'
            f"[schedule]\ninterval = {args.interval}\nmin_interval = {args.interval}\n"
            f"max_interval = {args.interval * 4}\nmax_backoff = 60\n"
            f'[daemon]\nlisten = "127.0.0.1:{port}"\n'
            + "".join(f'[[feeds]]\nurl = "{base}/f/{n}.xml"\n' for n in range(args.feeds))
        )
        daemon = start_daemon(config, redis_url, work / "daemon.log")
        client = redis.Redis.from_url(redis_url, decode_responses=True)

        def arrivals() -> None:
            while not stop.wait(1 / args.rate):
                feeds.add(base)

        threading.Thread(target=arrivals, daemon=True).start()
        started = time.monotonic()
        samples: list[tuple[float, float]] = []
        redis_mb: list[float] = []
        metrics = ""
        while time.monotonic() - started < args.minutes * 60:
            time.sleep(10)
            elapsed = time.monotonic() - started
            if daemon.poll() is not None:
                raise SystemExit(f"the daemon exited with {daemon.returncode}: see {work}")
            samples.append((elapsed, rss_mb(daemon.pid)))
            redis_mb.append(client.info("memory")["used_memory"] / 2**20)
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            processed = metric(metrics, "monitor_items_processed_total")
            print(f"{elapsed / 60:5.1f} min  RSS {samples[-1][1]:6.1f} MB  "
                  f"Redis {redis_mb[-1]:6.1f} MB  items {processed:.0f}", flush=True)  # fmt: skip
        stop.set()
        peak = peak_rss_mb(daemon.pid)
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=60)
    second_half = [s for s in samples if s[0] >= samples[-1][0] / 2]
    every_5 = {
        f"rss_at_{round(t / 60)}_min": round(v, 1) for t, v in samples if round(t) % 300 < 10
    }
    report(
        "soak",
        minutes=args.minutes,
        feeds=args.feeds,
        items_added=feeds.added,
        polls=metric(metrics, "monitor_polls_total"),
        poll_errors=metric(metrics, 'monitor_polls_total{result="error"}'),
        items_processed=metric(metrics, "monitor_items_processed_total"),
        alerts=metric(metrics, "monitor_alerts_published_total"),
        items_failed=metric(metrics, "monitor_items_failed_total"),
        peak_rss_mb=round(peak, 1),
        rss_first_sample_mb=round(samples[0][1], 1),
        rss_end_mb=round(samples[-1][1], 1),
        rss_slope_second_half_mb_per_10_min=round(slope_per_10_min(second_half), 2),
        **every_5,
        redis_start_mb=round(redis_mb[0], 1),
        redis_end_mb=round(redis_mb[-1], 1),
        exit_code=code,
    )


if __name__ == "__main__":
    main()
