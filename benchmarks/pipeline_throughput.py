"""Throughput of the whole per-item path: N article pages through Pipeline.process (extract
with trafilatura, language, dedup in Redis, 1,000 rules, publish), against bare
`trafilatura.extract` on the same pages in the same run. Target (issue 7): per-item cost at
most 1.3 x the bare extraction.

Pages: the NeuS reports (../shared/data, read at run time, never copied here), five leads of
consecutive reports per page (~300 words) inside realistic page chrome (navigation, cookie
banner, related links, footer, scripts). Without the data, generated text. Pages are served
from memory: this measures processing, not HTTP.

    python benchmarks/pipeline_throughput.py [--items 10000] [--rules 1000]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import time
from datetime import UTC, datetime

import redis
import trafilatura
from _support import ROOT, peak_rss_mb, redis_server, report
from rules_scale import generate, vocabulary

from monitor import log, runtime
from monitor.config import Settings
from monitor.fetch import Page
from monitor.model import Item
from monitor.rules.load import Rule, RuleSet
from monitor.rules.query import parse

NEUS = ROOT.parent / "shared" / "data" / "stories-dev" / "neus"
_PART = re.compile(r"\s*TITLE=>\s*(.*?)\s*ARTICLE=>\s*(.*)", re.S)


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
    made = [(" ".join(rng.sample(words, 6)).capitalize(),
             ". ".join(" ".join(rng.choices(words, k=15)) for _ in range(4)) + ".")
            for _ in range(3000)]  # fmt: skip
    return made, "generated"


def page(n: int, texts: list[tuple[str, str]], rng: random.Random) -> str:
    """An article page of the size and shape of a news site's (~100 KB): five reports'
    leads as the article, and the chrome around it."""
    chosen = rng.sample(range(len(texts)), 5)
    title = texts[chosen[0]][0]
    paragraphs = "".join(f"<p>{texts[k][1]}</p>" for k in chosen)
    teasers = "".join(
        f'<li><a href="/a/{k}"><h3>{texts[k][0]}</h3></a><p>{texts[k][1][:160]}</p></li>'
        for k in rng.sample(range(len(texts)), 12)
    )
    menu = "".join(f'<li><a href="/section/{k}">Section {k}</a></li>' for k in range(150))
    tracking = "var _q=[" + ",".join(f'"{rng.getrandbits(64):x}"' for _ in range(1500)) + "];"
    return (
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


class MemoryFetcher:
    def __init__(self, pages: dict[str, bytes]) -> None:
        self.pages = pages

    def fetch(self, url: str) -> Page:
        return Page(url=url, body=self.pages[url])


def bare(pages: list[bytes]) -> list[float]:
    times = []
    for body in pages:
        started = time.perf_counter()
        trafilatura.extract(body)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--rules", type=int, default=1_000)
    args = parser.parse_args()
    texts, origin = reports()
    urls = [f"https://news.example/a/{n}" for n in range(args.items)]
    rng = random.Random(5)
    pages = {url: page(n, texts, rng).encode() for n, url in enumerate(urls)}
    names, topics, _ = vocabulary()
    queries = generate(args.rules, random.Random(args.rules), names, topics)
    rules = RuleSet(tuple(Rule(id=f"r{n}", name=f"rule {n}", query=q, node=parse(q))
                          for n, q in enumerate(queries)), {})  # fmt: skip
    now = datetime.now(UTC)
    items = [
        Item(guid=url, url=url, title=texts[n % len(texts)][0], source=f"outlet{n % 40}",
             feed="bench", summary="A short summary.", published=now)
        for n, url in enumerate(urls)
    ]  # fmt: skip
    bodies = list(pages.values())
    log.configure("info")  # as `monitor run` logs: one JSON line per item, to stderr
    with redis_server() as url:
        client = redis.Redis.from_url(url, decode_responses=True)
        pipeline = runtime.pipeline(client, Settings(), rules, MemoryFetcher(pages))
        pipeline.process(items[0])  # warm up: language model, scripts
        client.flushall()
        half = len(bodies) // 2  # bare extraction before and after: drift shows, and cancels
        first = bare(bodies[:half])
        per_item, alerts, outcomes = [], 0, {}
        started = time.perf_counter()
        for item in items:
            t0 = time.perf_counter()
            result = pipeline.process(item)
            per_item.append(time.perf_counter() - t0)
            alerts += len(result.alerts)
            outcome = str(result.placement.outcome)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        elapsed = time.perf_counter() - started
        second = bare(bodies[half:])
        memory = client.info("memory")["used_memory"]
    extract_times = first + second
    words = [len((trafilatura.extract(body) or "").split()) for body in bodies[:200]]
    ratio = statistics.mean(per_item) / statistics.mean(extract_times)
    report(
        "pipeline_throughput",
        items=args.items,
        rules=args.rules,
        text=origin,
        words_per_article=round(statistics.mean(words), 0),
        page_kb=round(statistics.mean(len(b) for b in bodies) / 1024, 1),
        items_per_s=round(args.items / elapsed, 1),
        pipeline_ms_mean=round(statistics.mean(per_item) * 1000, 2),
        pipeline_ms_median=round(statistics.median(per_item) * 1000, 2),
        bare_extract_ms_mean=round(statistics.mean(extract_times) * 1000, 2),
        bare_extract_ms_median=round(statistics.median(extract_times) * 1000, 2),
        bare_first_half_vs_second=round(statistics.mean(first) / statistics.mean(second), 2),
        ratio=round(ratio, 2),
        outcomes=outcomes,
        alerts=alerts,
        redis_mb=round(memory / 2**20, 1),
        peak_rss_mb=round(peak_rss_mb(os.getpid()), 1),
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
