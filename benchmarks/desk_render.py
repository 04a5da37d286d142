"""How fast the desk's pages answer with many retained items (target: the stories page in
≤ 200 ms with 100,000 retained items).

    python benchmarks/desk_render.py [--items 100000] [--requests 50]

Fills a throwaway redis-server with `--items` processed reports (~600-word texts, 1 to 8
reports per story, a tenth matching a rule) through the same RetainedItems + Desk calls the
pipeline makes, starts `monitor web` on loopback, and times real HTTP requests from here:
median and p95 of each page, plus Redis memory per retained item.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._support import ROOT, redis_server
from monitor.model import Article, Item, Outcome, Placement
from monitor.retained.cards import Desk
from monitor.retained.items import RetainedItems
from monitor.store.keys import Keys

SOURCES = [f"Outlet {n}" for n in range(60)]
WORDS = "north korea missile launch summit treaty talks ceasefire election court ruling".split()


def fill(client: redis.Redis, items: int, rng: random.Random) -> None:
    keys = Keys()
    retained = RetainedItems(client, keys, retention=7 * 86400, maxlen=items + 1000)
    desk = Desk(client, keys, retention=7 * 86400)
    story, left, n = "", 0, 0
    now = datetime.now(UTC)
    vocabulary = [f"w{k}" for k in range(5000)]
    texts = [" ".join(rng.choices(vocabulary, k=590) + rng.sample(WORDS, 3)) for _ in range(50)]
    started = time.perf_counter()
    while n < items:
        if left == 0:
            story, left, first = f"story{n:08d}", rng.randint(1, 8), True
        item = Item(
            guid=f"urn:bench:{n}",
            url=f"https://news{n % 60}.example/{n}",
            title=f"Report {n}: " + " ".join(rng.sample(WORDS, 5)),
            source=rng.choice(SOURCES),
            feed="bench",
            published=now - timedelta(seconds=(items - n) * 5),
        )
        article = Article(text=texts[n % 50], title=item.title, language="en")
        outcome = Outcome.NEW_STORY if first else Outcome.SAME_STORY
        placement = Placement(outcome=outcome, story_id=story)
        entry = retained.append(item, article, item.url, placement)
        rules = ["dprk-missile-launch"] if rng.random() < 0.1 else []
        desk.record(entry, item, article, item.url, placement, rules, ("Reuters",))
        n, left, first = n + 1, left - 1, False
        if n % 20000 == 0:
            rate = n / (time.perf_counter() - started)
            print(f"  {n:,} items filed ({rate:,.0f}/s)", file=sys.stderr)


def timed(web: httpx.Client, path: str, requests: int) -> tuple[float, float]:
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = web.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    with redis_server() as url:
        client = redis.Redis.from_url(url, decode_responses=True)
        before = int(client.info("memory")["used_memory"])
        fill(client, args.items, random.Random(7))
        used = int(client.info("memory")["used_memory"]) - before
        # The desk as users run it: `monitor web`, its own process.
        log = Path(tempfile.mkdtemp(prefix="desk-bench-")) / "web.log"
        env = {**os.environ, "MONITOR_REDIS_URL": url}
        with log.open("w") as stderr:
            web_process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "monitor",
                    "web",
                    "--listen",
                    "127.0.0.1:0",
                    "--rules",
                    str(ROOT / "rules"),
                ],
                env=env,
                stderr=stderr,
                stdout=subprocess.DEVNULL,
            )
        while "web_listening" not in log.read_text():
            time.sleep(0.05)
        line = next(x for x in log.read_text().splitlines() if "web_listening" in x)
        host, port = json.loads(line)["address"].rsplit(":", 1)
        # TCP_NODELAY as browsers set it: without it a keep-alive request waits on delayed ACKs.
        nodelay = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        with httpx.Client(base_url=f"http://{host}:{port}", timeout=60, transport=nodelay) as web:
            story = web.get("/").text.split('href="/story/', 1)[1].split('"', 1)[0]
            print(
                f"{args.items:,} retained items, {client.zcard('monitor:desk:stories'):,} "
                f"stories; Redis {used / args.items / 1024:.1f} KB per retained item "
                f"(text included)"
            )
            print(f"{'page':<44} {'median ms':>10} {'p95 ms':>8}")
            pages = [
                "/",
                "/?rule=dprk-missile-launch",
                "/?source=Outlet%207",
                "/?since=1h",
                f"/story/{story}",
                "/alerts",
                "/rules",
            ]
            for path in pages:
                median, p95 = timed(web, path, args.requests)
                print(f"{path:<44} {median:>10.1f} {p95:>8.1f}")
            median, p95 = timed(web, "/search?q=missile+AND+treaty&days=7", 5)
            print(f"{'/search (every retained item, indexed)':<44} {median:>10.1f} {p95:>8.1f}")
        web_process.terminate()
        web_process.wait(timeout=10)


if __name__ == "__main__":
    main()
