"""Item-to-alert latency: an item appears in a live feed; how long until its alert is in the
stream. `after_poll` runs from the poll that found it (its items-stream entry is written right
after the poll) to the alert's stream entry; `end_to_end` from the moment the feed changed
(it includes waiting for the next poll, interval 1 s). Target (issue 3): p95 after the poll <= 1 s.

Each item is a distinct story (random text) that a benchmark rule matches; its page is served
by the same loopback server and goes through trafilatura like any other.

    python benchmarks/alert_latency.py [--items 60]
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import tempfile
import threading
import time
from pathlib import Path

import redis
from _support import http_server, percentile, redis_server, report, start_daemon

WORDS = [f"w{n:04d}" for n in range(5000)]


def article(n: int, rng: random.Random) -> tuple[str, str]:
    title = " ".join(rng.sample(WORDS, 6)).title()
    paragraphs = [" ".join(rng.choices(WORDS, k=60)) + " benchmarkword." for _ in range(6)]
    html = (
        f"<html><head><title>{title}</title></head><body><nav>Home World Sport</nav><article>"
        f"<h1>{title}</h1>"
        + "".join(f"<p>{p}</p>" for p in paragraphs)
        + "</article><footer>All rights reserved</footer></body></html>"
    )
    return title, html


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=60)
    args = parser.parse_args()
    rng = random.Random(7)
    work = Path(tempfile.mkdtemp(prefix="monitor-latency-bench-"))
    (work / "rules").mkdir()
    (work / "rules" / "bench.yaml").write_text("id: bench\nname: Benchmark\nquery: benchmarkword\n")
    lock = threading.Lock()
    feed_items: list[str] = []
    pages: dict[str, bytes] = {}

    def handler(path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        with lock:
            if path == "/feed.xml":
                body = (
                    '<?xml version="1.0"?><rss version="2.0"><channel><title>b</title>'
                    + "".join(feed_items)
                    + "</channel></rss>"
                ).encode()
                return 200, {"Content-Type": "application/rss+xml"}, body
            if path in pages:
                return 200, {"Content-Type": "text/html"}, pages[path]
        return 404, {}, b""

    with redis_server() as redis_url, http_server(handler) as base:
        config = work / "monitor.toml"
        config.write_text(
            f'rules_dir = "{work / "rules"}"\nlog_level = "warning"\n'
            '[schedule]\ninterval = 1\nmin_interval = 1\njitter = 0\n[daemon]\nlisten = ""\n'
            f'[[feeds]]\nurl = "{base}/feed.xml"\ninterval = 1\n'
        )
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        daemon = start_daemon(config, redis_url, work / "daemon.log")
        time.sleep(3)  # started, first (empty) poll done
        appeared: dict[str, float] = {}
        for n in range(args.items):
            title, html = article(n, rng)
            guid = f"urn:bench:{n}"
            with lock:
                pages[f"/p/{n}.html"] = html.encode()
                link = f"{base}/p/{n}.html"
                feed_items.append(
                    f"<item><title>{title}</title><link>{link}</link><guid>{guid}</guid>"
                    "<description>s</description></item>"
                )
                appeared[guid] = time.time()
            time.sleep(rng.uniform(0.3, 1.2))
        deadline = time.monotonic() + 60
        while client.xlen("monitor:alerts") < args.items and time.monotonic() < deadline:
            time.sleep(0.2)
        polled_at = {
            json.loads(f["item"])["guid"]: int(eid.split("-")[0]) / 1000
            for eid, f in client.xrange("monitor:items")
        }
        alerted_at = {
            json.loads(f["alert"])["item"]["guid"]: int(eid.split("-")[0]) / 1000
            for eid, f in client.xrange("monitor:alerts")
        }
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
    after_poll = [alerted_at[g] - polled_at[g] for g in alerted_at if g in polled_at]
    end_to_end = [alerted_at[g] - appeared[g] for g in alerted_at if g in appeared]
    report(
        "alert_latency",
        items=args.items,
        alerts=len(alerted_at),
        after_poll_p50_s=round(percentile(after_poll, 50), 3),
        after_poll_p95_s=round(percentile(after_poll, 95), 3),
        end_to_end_p50_s=round(percentile(end_to_end, 50), 3),
        end_to_end_p95_s=round(percentile(end_to_end, 95), 3),
        poll_interval_s=1,
    )


if __name__ == "__main__":
    main()
