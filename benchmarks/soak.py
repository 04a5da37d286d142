"""Soak: `monitor run` for a long time against a loopback feed server whose feeds keep
changing; the daemon's RSS is sampled every 10 s. Target (issue 7): flat RSS.

The server holds --feeds RSS feeds of their last 30 items. New items arrive at --rate per
second, most of them on a few busy feeds (feed k gets a share of 1/(k+1)), so busy feeds roll
old items off. Each item has its page: English-looking article HTML of ~300 words in
news-site chrome, made of common words and its story's own made-up names. Two in five items
start a new story, two in five follow up a recent one, one in five is a wire copy of a recent
item (a near-duplicate); one story in ten is about what a rule in rules/ alerts on. Unchanged
feeds answer 304 to the daemon's conditional GET, except one in ten that sends no ETag. One
feed in forty answers 500, one in forty never answers (a read timeout, after the default 30 s);
one page in fifty is missing (404: the item goes on with its feed text). The daemon runs with
the default settings but for the poll interval and `per_host` (one loopback host stands for
many sites).

    python benchmarks/soak.py [--minutes 30] [--feeds 200] [--rate 2] [--interval 5]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import re
import signal
import socket
import tempfile
import threading
import time
from collections import deque
from email.utils import formatdate
from pathlib import Path

import httpx
import redis
from _support import ROOT, http_server, peak_rss_mb, redis_server, report, start_daemon

SAMPLE = 10  # seconds between samples
KEEP = 30  # items a feed keeps
SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
NAMES = [(a + b + "n").capitalize() for a in SYLLABLES for b in SYLLABLES]  # 4,900
FUNCTION = "the the the of of and and to to in in a a that for on with was as by at from".split()
COMMON = """government minister officials said told reporters talks week city region forces
police court report plan deal budget election party leader people workers company market
prices energy water health school border river port army rain storm fire crowd vote law
council mayor office record year month day morning night statement spokesman agency trade
bank farmers families children village hospital road bridge train station protest strike
announced expected warned agreed rejected denied confirmed reported opened closed raised cut
new local national former senior large small first last several many early late""".split()
TOPICS = (  # what the rules in rules/ alert on
    "Pyongyang and Moscow signed a mutual defence treaty, state media said.",
    "North Korea fired a ballistic missile into the sea, Seoul's military said.",
    "China's PLA began large-scale drills around Taiwan on Monday, Taipei said.",
)


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


def counter(text: str, name: str) -> dict[str, float]:
    """A Prometheus counter's values by its one label's value ("" when it has none)."""
    pattern = rf'^{name}_total(?:{{\w+="([^"]*)"}})? (\S+)$'
    return {m[1] or "": float(m[2]) for m in re.finditer(pattern, text, re.MULTILINE)}


def sentence(rng: random.Random, names: list[str]) -> str:
    words = [
        rng.choice(FUNCTION) if r < 0.4 else rng.choice(COMMON) if r < 0.8 else rng.choice(names)
        for r in (rng.random() for _ in range(rng.randint(10, 20)))
    ]
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


def page_html(title: str, paragraphs: list[str]) -> bytes:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title} | Soak'
        f' News</title><meta name="description" content="{paragraphs[0][:150]}"></head><body>'
        '<header><nav><a href="/">Home</a> <a href="/world">World</a> <a href="/business">'
        'Business</a> <a href="/sport">Sport</a></nav></header><main><article>'
        f'<h1>{title}</h1><p class="byline">By Staff Reporter</p>'
        + "".join(f"<p>{p}</p>" for p in paragraphs)
        + '</article><aside><h2>Most read</h2><ul><li><a href="/a">Markets close higher</a>'
        '</li><li><a href="/b">Weather: storms expected</a></li></ul></aside></main>'
        "<footer>Soak News. All rights reserved.</footer></body></html>"
    ).encode()


class Feeds:
    """The changing feeds and their pages, shared with the server's threads."""

    def __init__(self, count: int, rng: random.Random) -> None:
        self.rng = rng
        self.lock = threading.Lock()
        self.items: list[list[tuple[str, str]]] = [[] for _ in range(count)]  # (path, <item>)
        self.version = [0] * count
        self.pages: dict[str, bytes] = {}
        self.weights = [1 / (k + 1) for k in range(count)]
        self.stories: list[tuple[list[str], str]] = []  # recent: (names, topic sentence)
        self.recent: list[tuple[str, list[str]]] = []  # recent items: (title, paragraphs)
        self.added = 0

    def add(self, base: str) -> None:
        rng = self.rng
        kind = rng.random()
        if kind < 0.2 and self.recent:  # a wire copy: new dateline, last paragraph cut
            title, paragraphs = rng.choice(self.recent)
            paragraphs = [
                f"{rng.choice(NAMES).upper()} (Wire) - {paragraphs[0]}",
                *paragraphs[1:-1],
            ]
        else:
            if kind < 0.6 and self.stories:  # a follow-up of a recent story
                names, topic = rng.choice(self.stories)
            else:
                names = rng.sample(NAMES, 12)
                topic = rng.choice(TOPICS) if rng.random() < 0.1 else ""
                self.stories = [*self.stories[-49:], (names, topic)]
            paragraphs = [" ".join(sentence(rng, names) for _ in range(3)) for _ in range(6)]
            if topic:
                paragraphs[0] = f"{topic} {paragraphs[0]}"
            title = sentence(rng, names)[:-1]
        self.recent = [*self.recent[-49:], (title, paragraphs)]
        with self.lock:
            n, self.added = self.added, self.added + 1
            path = f"/p/{n}.html"
            if n % 50 != 49:
                self.pages[path] = page_html(title, paragraphs)
            feed = rng.choices(range(len(self.items)), self.weights)[0]
            item = (
                f"<item><title>{title}</title><link>{base}{path}</link><guid>urn:soak:{n}</guid>"
                f"<pubDate>{formatdate(usegmt=True)}</pubDate>"
                f"<description>{paragraphs[0][:200]}</description></item>"
            )
            self.items[feed].insert(0, (path, item))
            for gone, _ in self.items[feed][KEEP:]:
                self.pages.pop(gone, None)
            del self.items[feed][KEEP:]
            self.version[feed] += 1

    def handle(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if not path.startswith("/f/"):
            with self.lock:
                page = self.pages.get(path)
            if page is None:
                return 404, {}, b""
            return 200, {"Content-Type": "text/html; charset=utf-8"}, page
        feed = int(path[3:].split(".")[0])
        if feed % 40 == 39:
            return 500, {}, b"server error"
        with self.lock:
            etag = f'"{self.version[feed]}"' if feed % 10 != 3 else ""
            if etag and headers.get("if-none-match") == etag:
                return 304, {"ETag": etag}, b""
            body = (
                '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
                f"<title>Soak {feed}</title><link>http://soak.example/</link>"
                + "".join(item for _, item in self.items[feed])
                + "</channel></rss>"
            ).encode()
        return 200, {"Content-Type": "application/rss+xml"} | ({"ETag": etag} if etag else {}), body


def silent_port() -> int:
    """A loopback port that accepts connections and never answers: feeds there time out."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: deque[socket.socket] = deque(maxlen=100)  # closed as they drop out

    def accept() -> None:
        while True:
            held.append(listener.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    return listener.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--rate", type=float, default=2.0, help="new items per second")
    parser.add_argument("--interval", type=float, default=5.0, help="poll interval, seconds")
    args = parser.parse_args()
    feeds = Feeds(args.feeds, random.Random(11))
    work = Path(tempfile.mkdtemp(prefix="monitor-soak-"))
    log = work / "daemon.log"
    stop = threading.Event()
    with socket.socket() as probe:  # a free port for the daemon's /metrics
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    silent = f"http://127.0.0.1:{silent_port()}"
    with redis_server() as redis_url, http_server(feeds.handle) as base:
        urls = [f"{silent if n % 40 == 19 else base}/f/{n}.xml" for n in range(args.feeds)]
        config = work / "monitor.toml"
        config.write_text(
            f'rules_dir = "{ROOT / "rules"}"\nlog_level = "warning"\n'
            "[http]\nper_host = 16\n"  # one loopback host stands for many sites
            f"[schedule]\ninterval = {args.interval}\nmin_interval = {args.interval}\n"
            f"max_interval = {args.interval * 4}\nmax_backoff = 60\n"
            f'[daemon]\nlisten = "127.0.0.1:{port}"\n'
            + "".join(f'[[feeds]]\nurl = "{url}"\n' for url in urls)
        )
        daemon = start_daemon(config, redis_url, log)
        client = redis.Redis.from_url(redis_url, decode_responses=True)

        def arrivals() -> None:
            while not stop.wait(1 / args.rate):
                feeds.add(base)

        threading.Thread(target=arrivals, daemon=True).start()
        started = time.monotonic()
        samples: list[tuple[float, float]] = []
        redis_mb: list[float] = []
        metrics = ""
        for tick in range(1, int(args.minutes * 60 / SAMPLE) + 1):
            time.sleep(max(0.0, started + tick * SAMPLE - time.monotonic()))
            if daemon.poll() is not None:
                raise SystemExit(f"the daemon exited with {daemon.returncode}: see {log}")
            samples.append((tick * SAMPLE, rss_mb(daemon.pid)))
            redis_mb.append(client.info("memory")["used_memory"] / 2**20)
            with contextlib.suppress(httpx.HTTPError):  # a busy daemon: read at the next
                metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
            processed = sum(counter(metrics, "monitor_items_processed").values())
            print(
                f"{tick * SAMPLE / 60:5.1f} min  RSS {samples[-1][1]:6.1f} MB  "
                f"Redis {redis_mb[-1]:6.1f} MB  items {processed:.0f}",
                flush=True,
            )
        stop.set()
        peak = peak_rss_mb(daemon.pid)
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=60)
    second_half = [s for s in samples if s[0] >= samples[-1][0] / 2]
    every_5 = {f"rss_{t // 60}_min_mb": round(v, 1) for t, v in samples if t % 300 == 0}
    polls = counter(metrics, "monitor_polls")
    # the daemon's stderr: JSON lines, warnings for failed polls and pages; anything else counts
    errors = [
        line
        for line in log.read_text().splitlines()
        if not re.match(r'{.*"level": "warning"', line)
    ]
    figures = {
        "peak_rss_mb": round(peak, 1),
        "rss_first_sample_mb": round(samples[0][1], 1),
        **every_5,
        "rss_end_mb": round(samples[-1][1], 1),
        "rss_slope_second_half_mb_per_10_min": round(slope_per_10_min(second_half), 2),
        "polls": sum(polls.values()),
        "polls_by_result": polls,
        "http_responses": counter(metrics, "monitor_http_responses"),
        "items_added": feeds.added,
        "items_processed": counter(metrics, "monitor_items_processed"),
        "items_without_page": sum(counter(metrics, "monitor_items_without_page").values()),
        "items_failed": sum(counter(metrics, "monitor_items_failed").values()),
        "alerts": sum(counter(metrics, "monitor_alerts_published").values()),
        "log_errors": len(errors),
        "redis_start_mb": round(redis_mb[0], 1),
        "redis_end_mb": round(redis_mb[-1], 1),
        "exit_code": code,
    }
    for name, value in figures.items():
        print(f"{name:>38}  {value}")
    print(f"{'daemon log':>38}  {log}")
    report("soak", minutes=args.minutes, feeds=args.feeds, rate=args.rate, **figures)


if __name__ == "__main__":
    main()
