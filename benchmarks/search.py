"""Searching everything retained (targets, issue 33: p50 <= 100 ms and p95 <= 300 ms at
100,000 retained items; index memory <= 1 KB per item; indexing + `adds` <= 1 ms per item).

    python benchmarks/search.py [--items 100000] [--runs 20]

Fills a throwaway redis-server with `--items` retained reports through the calls the
pipeline makes (RetainedItems.append: the stream, its document record and postings;
StoryFacts.measure: what each report adds to its story), stories of 1 to 8 reports; both are
given the words of title and text, as the pipeline's analysis gives them. Texts:
the story development sets' real reports (../shared/data/stories-dev, read at run time,
never copied here), cycled; each copy's title carries its number, so titles stay distinct.
Then five queries of different selectivity, each run `--runs` times through
monitor/pipeline/search.py:search as `monitor search` runs it (the newest 20 matches with
their explanations, and the count): p50 and p95 over all runs, and per query. Index
memory is MEMORY USAGE summed over the index's keys (postings, words, document records)
per retained item; the `doc` field each stream entry gains is not in it (~8 bytes).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _support import redis_server, report
from corpora import CORPORA, DATA, load

from monitor.model import Article, Item, Outcome, Placement
from monitor.pipeline.search import search
from monitor.retained.adds import StoryFacts
from monitor.retained.items import RetainedItems
from monitor.rules import ad_hoc_rule
from monitor.store.keys import Keys
from monitor.text import words

SHOWN = 20  # matches explained: `monitor search`'s default --limit
QUERIES = {  # from rare to common; the last needs texts read (a phrase)
    "rare name": "Kessler OR Pyongyang",
    "two words": "police AND suspect",
    "wildcard": "sanction* OR missile*",
    "common word": "police",
    "phrase": '"police said"',
}


def texts() -> list[tuple[str, str, str]]:
    """(title, text, source) of every report of the development sets."""
    found = []
    for corpus in CORPORA:
        for split in ("train", "val") if corpus == "neus" else ("val",):
            found += [(r.title, r.text, r.source or "outlet") for r in load(corpus, split)]
    return found


def fill(client: redis.Redis, items: int, corpus: list[tuple[str, str, str]]) -> dict[str, float]:
    keys = Keys()
    retained = RetainedItems(client, keys, retention=30 * 86400, maxlen=items + 1000)
    facts = StoryFacts(client, keys, retention=30 * 86400)
    rng = random.Random(7)
    now = datetime.now(UTC)
    spent = {"retain": 0.0, "index": 0.0, "adds": 0.0}
    index_add = retained.index.add

    def timed_add(doc: int, tokens: object) -> None:
        started = time.perf_counter()
        index_add(doc, tokens)  # type: ignore[arg-type]
        spent["index"] += time.perf_counter() - started

    retained.index.add = timed_add  # type: ignore[method-assign]
    story, left, first = "", 0, True
    order = list(range(len(corpus)))
    rng.shuffle(order)
    for n in range(items):
        title, text, source = corpus[order[n % len(order)]]
        if left == 0:
            story, left, first = f"{n:016x}", rng.randint(1, 8), True
        item = Item(
            guid=f"urn:bench:{n}",
            url=f"https://{source}/{n}",
            title=f"{title} ({n})",
            source=source,
            feed="bench",
            published=now - timedelta(seconds=(items - n) * 5),
        )
        article = Article(text=text, title=item.title, language="en")
        outcome = Outcome.NEW_STORY if first else Outcome.SAME_STORY
        placement = Placement(outcome=outcome, story_id=story)
        folded = (words(item.title), words(text))  # the pipeline's analysis has them
        started = time.perf_counter()
        facts.measure(story, item.title, text, folded)
        middle = time.perf_counter()
        retained.append(item, article, item.url, placement, folded)
        spent["adds"] += middle - started
        spent["retain"] += time.perf_counter() - middle
        left, first = left - 1, False
        if (n + 1) % 20000 == 0:
            print(f"  {n + 1:,} items retained", file=sys.stderr)
    spent["retain"] -= spent["index"]
    return {part: round(s / items * 1000, 3) for part, s in spent.items()}


def memory(client: redis.Redis, patterns: list[str]) -> int:
    total = 0
    for pattern in patterns:
        batch = []
        for key in client.scan_iter(match=pattern, count=5000):
            batch.append(key)
            if len(batch) == 5000:
                total += _usage(client, batch)
                batch = []
        total += _usage(client, batch)
    return total


def _usage(client: redis.Redis, keys: list[str]) -> int:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.memory_usage(key, samples=0)
    return sum(n or 0 for n in pipe.execute())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"no development sets at {DATA}: nothing to measure")
        return
    corpus = texts()
    with redis_server() as url:
        client = redis.Redis.from_url(url, decode_responses=True)
        started = time.perf_counter()
        ms_per_item = fill(client, args.items, corpus)
        filled = time.perf_counter() - started
        index_bytes = memory(
            client, ["monitor:search:*", "monitor:words:*", "{monitor:retained}:docs:*"]
        )
        facts_bytes = memory(client, ["monitor:facts:*"])
        retained = RetainedItems(client, Keys(), retention=30 * 86400, maxlen=args.items + 1000)
        times: dict[str, list[float]] = {}
        counts: dict[str, str] = {}
        for name, query in QUERIES.items():
            rule = ad_hoc_rule(query, {})
            search(rule, retained)  # warm: the first run loads the script cache and pages
            for _ in range(args.runs):
                started = time.perf_counter()
                found = search(rule, retained, shown=SHOWN, per_story=False)
                times.setdefault(name, []).append((time.perf_counter() - started) * 1000)
            counts[name] = ("" if found.complete else ">=") + str(found.count)
    every = sorted(t for ts in times.values() for t in ts)

    def p95(values: list[float]) -> float:
        return sorted(values)[int(0.95 * (len(values) - 1))]

    figures = {
        "items": args.items,
        "texts": len(corpus),
        "p50_ms": round(statistics.median(every), 1),
        "p95_ms": round(p95(every), 1),
        "bytes_per_item": round(index_bytes / args.items),
        "adds_bytes_per_item": round(facts_bytes / args.items),
        "ms_per_item": ms_per_item,
        "fill_s": round(filled, 1),
        "queries": {
            name: {
                "query": QUERIES[name],
                "matches": counts[name],
                "p50_ms": round(statistics.median(ts), 1),
                "p95_ms": round(p95(ts), 1),
            }
            for name, ts in times.items()
        },
    }
    report("search", **figures)


if __name__ == "__main__":
    main()
