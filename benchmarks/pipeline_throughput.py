"""Throughput of the whole per-item path: N article pages through Pipeline.process (extract
with trafilatura, language, dedup in Redis, 1,000 rules, retention, alerts, logging on),
against bare `trafilatura.extract(html)` (default arguments) on the same pages in the same
run. Target (issue 7): per-item cost at most 1.3 x the bare extraction.

Pages: NeuS reports (../shared/data, train+val, read at run time, never copied here). A
NeuS lead is ~60 words, so a page's article is the leads of --leads random reports (default
10: ~600 words, a typical news article; the ratio depends on it, as extraction scales with
the page and most other stages with the text), inside news-site chrome: navigation, cookie
banner, related links, comments, footer, inline CSS and scripts. Without the data, generated
text, and the output says so. Items carry the page's title, a date (as most feeds do) and a
one-line summary, so the pipeline fetches and extracts every page. Pages are served from
memory: this measures processing, not HTTP.

The two measurements alternate in blocks of 250 pages (bare, then the pipeline, on the same
pages), so the drift of a shared machine falls on both alike. The pipeline's stages are timed
by wrappers (~1 us each): extract (trafilatura as the pipeline calls it), language, analysis
(the text read once: tokens, shingles, term counts, names, wires), dedup
(DedupIndex.place), match, adds (what the report adds to its story: StoryFacts.measure),
retain (the retained-items stream), index (its search postings), alerts (claims, story
look-ups, publishing) and other (logging, canonical URL, wire credits). --profile runs the pipeline
under cProfile instead and prints its top entries in monitor/.

    python benchmarks/pipeline_throughput.py [--items 10000] [--rules 1000] [--leads 10]
    python benchmarks/pipeline_throughput.py --items 500 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import re
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis
import trafilatura
from _support import ROOT, RedisAccount, peak_rss_mb, redis_server, report
from rules_scale import generate, vocabulary

import monitor.extract
import monitor.pipeline.process
from monitor import log
from monitor.config import Settings
from monitor.ingest.fetch import Page
from monitor.model import Item
from monitor.pipeline import runtime
from monitor.rules.model import Rule, RuleSet
from monitor.rules.query import parse

NEUS = ROOT.parent / "shared" / "data" / "stories-dev" / "neus"
_PART = re.compile(r"\s*TITLE=>\s*(.*?)\s*ARTICLE=>\s*(.*)", re.S)
BLOCK = 250  # pages per alternation of bare extraction and the pipeline
PARTS = ("extract", "language", "analysis", "dedup", "match", "adds", "retain", "index", "alerts")


def reports() -> tuple[list[tuple[str, str]], str]:
    found = []
    for split in ("train", "val"):
        path = NEUS / f"{split}.source"
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                for part in line.split(" [SEP] "):
                    if m := _PART.match(part):
                        found.append((m.group(1), m.group(2)))
    if found:
        return found, "NeuS train+val"
    rng = random.Random(3)
    words = [f"{a}{b}" for a in "bdfgklmnprstvz" for b in ("ano", "elo", "iru", "osa", "uke")]
    made = [
        (
            " ".join(rng.sample(words, 6)).capitalize(),
            ". ".join(" ".join(rng.choices(words, k=15)) for _ in range(4)) + ".",
        )
        for _ in range(3000)
    ]
    return made, "generated (NeuS data not found)"


def page(n: int, texts: list[tuple[str, str]], leads: int) -> tuple[str, bytes]:
    """Page n, the same in every run: its title, and its HTML as a news site serves it."""
    rng = random.Random(n)
    chosen = rng.sample(range(len(texts)), leads)
    title = texts[chosen[0]][0]
    paragraphs = "".join(f"<p>{texts[k][1]}</p>" for k in chosen)
    teasers = "".join(
        f'<li><a href="/a/{k}"><h3>{texts[k][0]}</h3></a><p>{texts[k][1][:160]}</p></li>'
        for k in rng.sample(range(len(texts)), 12)
    )
    menu = "".join(f'<li><a href="/section/{k}">Section {k}</a></li>' for k in range(150))
    tracking = "var _q=[" + ",".join(f'"{rng.getrandbits(64):x}"' for _ in range(1500)) + "];"
    html = (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{title} | News"
        f"</title><meta property='og:title' content='{title}'><link rel='canonical' "
        f"href='https://news.example/a/{n}'><style>{'.c{margin:0}' * 400}</style>"
        f"<script>{tracking}</script></head><body>"
        "<div class='cookie-banner'>We use cookies to improve your experience. Accept?</div>"
        f"<header><a href='/'>The Daily Example</a><nav><ul>{menu}</ul></nav></header>"
        f"<main><article><h1>{title}</h1><p class='byline'>By Staff Writer, June 19, 2024</p>"
        f"{paragraphs}</article><aside><h2>Most read</h2><ul>{teasers}</ul></aside></main>"
        "<section class='comments'><h2>Comments</h2><p>Log in to comment.</p></section>"
        f"<footer><p>Copyright 2024 The Daily Example. All rights reserved.</p><ul>{menu}</ul>"
        f"</footer><script>track('{n}');</script></body></html>"
    )
    return title, html.encode()


class MemoryFetcher:
    def __init__(self) -> None:
        self.pages: dict[str, bytes] = {}

    def fetch(self, url: str) -> Page:
        return Page(url=url, body=self.pages[url])


def timed(spent: dict[str, float], part: str, function: Callable) -> Callable:
    def call(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[part] += time.perf_counter() - started

    return call


class Timed:
    """`target` with the time of some of its methods added to `spent` (method=part)."""

    def __init__(self, target: object, spent: dict[str, float], **parts: str) -> None:
        self.target, self.spent, self.parts = target, spent, parts

    def __getattr__(self, name: str) -> Any:
        found = getattr(self.target, name)
        return timed(self.spent, self.parts[name], found) if name in self.parts else found


def instrument(pipeline: monitor.pipeline.process.Pipeline, spent: dict[str, float]) -> None:
    pipeline.index = Timed(pipeline.index, spent, place="dedup")
    pipeline.rules = Timed(pipeline.rules, spent, match="match")
    assert pipeline.retained is not None and pipeline.facts is not None
    pipeline.retained.index = Timed(pipeline.retained.index, spent, add="index")  # type: ignore[assignment]
    pipeline.retained = Timed(pipeline.retained, spent, append="retain")
    pipeline.facts = Timed(pipeline.facts, spent, measure="adds")
    pipeline.alert = timed(spent, "alerts", pipeline.alert)
    # extract() calls detect_language: "extract" is counted without it, below
    monitor.pipeline.process.extract = timed(spent, "extract", monitor.pipeline.process.extract)
    monitor.pipeline.process.analyse = timed(spent, "analysis", monitor.pipeline.process.analyse)
    monitor.extract.detect_language = timed(spent, "language", monitor.extract.detect_language)


def bare(bodies: list[bytes]) -> list[float]:
    times = []
    for body in bodies:
        started = time.perf_counter()
        trafilatura.extract(body)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--rules", type=int, default=1_000)
    parser.add_argument("--leads", type=int, default=10, help="NeuS leads per article")
    parser.add_argument("--profile", action="store_true", help="cProfile the pipeline instead")
    args = parser.parse_args()
    texts, origin = reports()
    names, topics, _ = vocabulary()
    queries = generate(args.rules, random.Random(args.rules), names, topics)
    rules = RuleSet(
        tuple(
            Rule(id=f"r{n}", name=f"rule {n}", query=q, node=parse(q))
            for n, q in enumerate(queries)
        ),
        {},
    )
    now = datetime.now(UTC)

    def item(n: int, title: str) -> Item:
        url = f"https://news.example/a/{n}"
        return Item(
            guid=url,
            url=url,
            title=title,
            source=f"outlet{n % 40}",
            feed="bench",
            summary="A short summary.",
            published=now,
        )

    log.configure("info")  # as `monitor run` logs: one JSON line per item, to stderr
    spent: dict[str, float] = defaultdict(float)
    profiler = cProfile.Profile() if args.profile else None
    with redis_server() as url:
        client = redis.Redis.from_url(url, decode_responses=True)
        fetcher = MemoryFetcher()
        pipeline = runtime.pipeline(client, Settings(), rules, fetcher)
        title, body = page(-1, texts, args.leads)  # warm up: language model, scripts
        fetcher.pages = {item(-1, title).url: body}
        assert pipeline.needs_page(item(-1, title))
        pipeline.process(item(-1, title))
        trafilatura.extract(body)
        client.flushall()
        account = RedisAccount(client)  # Redis's own CPU and commands over the run
        if profiler is None:
            instrument(pipeline, spent)
        extract_times, per_item, words, page_bytes, alerts, fallbacks = [], [], [], 0, 0, 0
        outcomes: Counter[str] = Counter()
        dedup_by_block = []  # dedup's cost as the index grows
        for start in range(0, args.items, BLOCK):
            stop = min(start + BLOCK, args.items)
            pages = [page(n, texts, args.leads) for n in range(start, stop)]
            block = [(item(n, title), body) for n, (title, body) in enumerate(pages, start)]
            fetcher.pages = {it.url: body for it, body in block}
            page_bytes += sum(len(body) for _, body in block)
            if profiler is None:
                extract_times += bare([body for _, body in block])
            else:
                profiler.enable()
            dedup_before = spent["dedup"]
            for it, _ in block:
                started = time.perf_counter()
                result = pipeline.process(it)
                per_item.append(time.perf_counter() - started)
                fallbacks += not result.article.from_page  # the page gave no article text
                words.append(len(result.article.text.split()))
                alerts += len(result.alerts)
                outcomes[str(result.placement.outcome)] += 1
            dedup_by_block.append((spent["dedup"] - dedup_before) / len(block))
            if profiler is not None:
                profiler.disable()
        memory = client.info("memory")["used_memory"]
        server = account.figures(args.items)
    if profiler is not None:
        print(f"cProfile of Pipeline.process over {args.items} items (monitor/ only):")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(r"/monitor/", 30)
        return

    total = sum(per_item)
    spent["extract"] -= spent["language"]
    spent["retain"] -= spent["index"]  # the search index is written within append
    breakdown = {part: spent[part] for part in PARTS}
    breakdown["other"] = total - sum(breakdown.values())
    half = len(extract_times) // 2
    ratio = statistics.mean(per_item) / statistics.mean(extract_times)
    figures = {
        "items": args.items,
        "rules": args.rules,
        "text": origin,
        "leads_per_page": args.leads,
        "words_per_article": round(statistics.mean(words)),
        "page_kb": round(page_bytes / args.items / 1024, 1),
        "pages_without_text": fallbacks,
        "items_per_s": round(args.items / total, 1),
        "pipeline_ms_mean": round(statistics.mean(per_item) * 1000, 2),
        "pipeline_ms_median": round(statistics.median(per_item) * 1000, 2),
        "bare_extract_ms_mean": round(statistics.mean(extract_times) * 1000, 2),
        "bare_extract_ms_median": round(statistics.median(extract_times) * 1000, 2),
        "bare_first_half_vs_second": round(
            statistics.mean(extract_times[:half]) / statistics.mean(extract_times[half:]), 2
        ),
        "ratio": round(ratio, 2),
        "ms_per_item": {part: round(s / args.items * 1000, 2) for part, s in breakdown.items()},
        "dedup_ms_first_block": round(dedup_by_block[0] * 1000, 2),
        "dedup_ms_last_block": round(dedup_by_block[-1] * 1000, 2),
        "outcomes": dict(outcomes),
        "alerts": alerts,
        "redis_mb": round(memory / 2**20, 1),
        **server,
        "peak_rss_mb": round(peak_rss_mb(os.getpid()), 1),
    }
    report("pipeline_throughput", **figures)
    parts = ", ".join(f"{p} {ms:.2f}" for p, ms in figures["ms_per_item"].items())
    print(
        f"{args.items} pages ({origin}, {figures['words_per_article']} words, "
        f"{figures['page_kb']} KB), {args.rules} rules\n"
        f"  pipeline: {figures['items_per_s']} items/s, {figures['pipeline_ms_mean']} ms mean, "
        f"{figures['pipeline_ms_median']} ms median per item\n"
        f"  bare trafilatura.extract: {figures['bare_extract_ms_mean']} ms mean, "
        f"{figures['bare_extract_ms_median']} ms median per page\n"
        f"  ratio {figures['ratio']} (target <= 1.3)\n"
        f"  ms per item: {parts}\n"
        f"  dedup: {figures['dedup_ms_first_block']} ms per item over the first {BLOCK} items, "
        f"{figures['dedup_ms_last_block']} ms over the last {BLOCK}\n"
        f"  peak RSS {figures['peak_rss_mb']} MB, Redis {figures['redis_mb']} MB, "
        f"{alerts} alerts, outcomes {dict(outcomes)}"
    )


if __name__ == "__main__":
    main()
