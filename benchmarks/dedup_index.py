"""The dedup index at size: per-item time of DedupIndex.place with N items already
indexed, split into the decision (fingerprints, document frequencies, near-duplicate and
same-story lookups: same item / near-duplicate / same story / new story) and recording the
item (its entry, frequencies, LSH buckets and postings), and Redis memory per indexed item.
Items are synthetic articles (random words and names, 250 words), so nearly every decision
is "new story" — the path that does every lookup.

    python benchmarks/dedup_index.py [--items 100000] [--sample 2000] [--workers 2]

Over the timed decisions, Redis's own accounting (`redis_ms_per_item`: the server's CPU per
item; and the commands' calls and microseconds per item, from INFO commandstats).

Before timing, --warmup decisions run untimed (a daemon's process is long-lived).

Target (issue 4): <= 2 ms median decision at 1,000,000 items. A million items take about
50 minutes to load on 2 cores (two loader processes beside Redis) and ~8 GB of Redis.
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime

import redis
from _support import RedisAccount, percentile, redis_server, report

from monitor.config import Settings
from monitor.dedup.index import DedupIndex
from monitor.model import Article, Item
from monitor.store.keys import Keys

WORDS = [f"w{n:05d}" for n in range(30_000)]
NAMES = [f"Name{n:04d}" for n in range(5_000)]


def article(n: int, rng: random.Random) -> tuple[Item, Article]:
    names = rng.sample(NAMES, 8)
    body = []
    for _ in range(250):
        body.append(rng.choice(names) if rng.random() < 0.08 else rng.choice(WORDS))
    title = " ".join([*names[:3], *rng.sample(WORDS, 4)])
    text = " ".join(body)
    item = Item(
        guid=f"urn:bench:{n}",
        url=f"https://example.org/{n}",
        title=title,
        source="bench",
        feed="bench",
        published=datetime.now(UTC),
    )
    return item, Article(text=text, title=title)


def load(url: str, start: int, stop: int) -> None:
    """Index articles start..stop-1 (one loader process)."""
    client = redis.Redis.from_url(url, decode_responses=True)
    index = make_index(client)
    rng = random.Random(start)
    for n in range(start, stop):
        index.place(*article(n, rng))


def make_index(client: redis.Redis) -> DedupIndex:
    return DedupIndex.from_settings(client, Keys(), Settings())  # the defaults


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=2_000, help="decisions timed at the end")
    parser.add_argument("--workers", type=int, default=2, help="loader processes")
    parser.add_argument("--warmup", type=int, default=500, help="untimed decisions first")
    args = parser.parse_args()
    rng = random.Random(1)
    with redis_server() as url:
        client = redis.Redis.from_url(url, decode_responses=True)
        index = make_index(client)
        base = client.info("memory")["used_memory"]
        started = time.perf_counter()
        bounds = [args.items * k // args.workers for k in range(args.workers + 1)]
        with ProcessPoolExecutor(args.workers) as pool:
            for done in [pool.submit(load, url, a, b) for a, b in itertools.pairwise(bounds)]:
                done.result()
        load_s = time.perf_counter() - started
        used = client.info("memory")["used_memory"] - base
        recording: list[float] = []
        record = index.store.record

        def timed_record(*a, **kw):  # the part of place() that writes, timed on its own
            t0 = time.perf_counter()
            written = record(*a, **kw)
            recording.append(time.perf_counter() - t0)
            return written

        index.store.record = timed_record  # type: ignore[method-assign]
        times, outcomes = [], Counter()
        first = args.items
        account = RedisAccount(client)
        for n in range(first, first + args.warmup + args.sample):
            item, art = article(n, rng)
            t0 = time.perf_counter()
            outcomes[index.place(item, art).outcome] += 1
            times.append(time.perf_counter() - t0)
            if n == first + args.warmup - 1:
                account.start()  # Redis's accounting over the timed decisions
        server = account.figures(args.sample)
        times, recording = times[args.warmup :], recording[args.warmup :]
        decisions = [t - r for t, r in zip(times, recording, strict=True)]
    report(
        "dedup_index",
        indexed=args.items,
        load_items_per_s=round(args.items / load_s),
        loaders=args.workers,
        decision_median_ms=round(statistics.median(decisions) * 1000, 3),
        decision_p99_ms=round(percentile(decisions, 99) * 1000, 3),
        recording_median_ms=round(statistics.median(recording) * 1000, 3),
        place_median_ms=round(statistics.median(times) * 1000, 3),
        place_p99_ms=round(percentile(times, 99) * 1000, 3),
        outcomes={str(k): v for k, v in outcomes.items()},
        redis_bytes_per_item=round(used / args.items),
        **server,
    )


if __name__ == "__main__":
    main()
