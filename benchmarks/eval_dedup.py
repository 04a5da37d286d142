"""Dedup quality on real news: the NeuS development set (../shared/data/stories-dev/neus).

Each line of NeuS holds three reports of one story by different outlets (title + lead).
Every report goes through the real DedupIndex (a throwaway Redis), in a shuffled order, and
the stories it forms are compared with NeuS's: pairwise precision/recall/F1 and B-cubed F1.
Then wire copies are generated from the reports (a new headline, a dateline, a few words
changed, the last sentence cut, outlet boilerplate appended) and must come out as
near-duplicates of their original, while the other outlets' rewrites must not.

The data is read at run time and never copied into the repository (its licence: evaluation
use only). Without it the script says so and exits 0.

    python benchmarks/eval_dedup.py [--split val] [--limit N]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections import defaultdict
from datetime import UTC, datetime

import redis
from _support import ROOT, redis_server, report

from monitor.config import Settings
from monitor.dedup.index import DedupIndex
from monitor.keys import Keys
from monitor.model import Article, Item, Outcome

DATA = ROOT.parent / "shared" / "data" / "stories-dev" / "neus"
_PART = re.compile(r"\s*TITLE=>\s*(.*?)\s*ARTICLE=>\s*(.*)", re.S)
DATELINES = [
    "WASHINGTON (Reuters) - ",
    "NEW YORK (AP) — ",
    "LONDON, June 19 (Reuters) - ",
    "(AFP) - ",
]
BOILERPLATE = ["Reporting by staff; editing by the desk.", "Copyright 2024 The Associated Press.",
               "This story has been corrected.", "Sign up for our daily briefing."]  # fmt: skip
SWAPS = {"said": "stated", "says": "states", "the": "a", "on": "upon", "after": "following",
         "new": "fresh", "big": "large", "told": "said to", "also": "as well"}  # fmt: skip


def load(split: str, limit: int | None) -> list[tuple[int, str, str]]:
    reports = []
    lines = (DATA / f"{split}.source").read_text(encoding="utf-8").splitlines()
    for story, line in enumerate(lines[:limit]):
        for part in line.split(" [SEP] "):
            m = _PART.match(part)
            if m:
                reports.append((story, m.group(1), m.group(2)))
    return reports


def wire_copy(title: str, text: str, rng: random.Random) -> tuple[str, str]:
    """The same text republished: new headline, dateline, a few words changed, tail trimmed."""
    words = text.split()
    swappable = [i for i, w in enumerate(words) if w.lower() in SWAPS]
    for i in rng.sample(swappable, min(len(swappable), max(1, len(words) // 25))):
        words[i] = SWAPS[words[i].lower()]  # a few words changed: one in 25 at most
    sentences = re.split(r"(?<=[.!?])\s+", " ".join(words))
    if len(sentences) > 2 and len(sentences[-1].split()) <= len(words) // 4:
        sentences = sentences[:-1]  # a trimmed tail: at most a quarter of the text
    body = rng.choice(DATELINES) + " ".join(sentences) + " " + rng.choice(BOILERPLATE)
    return "UPDATE: " + title, body


def placed(index: DedupIndex, n: int, title: str, text: str, source: str) -> tuple[str, object]:
    item = Item(guid=f"urn:neus:{n}", url=f"https://{source}.example/{n}", title=title,
                source=source, feed="eval", published=datetime.now(UTC))  # fmt: skip
    return item.id, index.place(item, Article(text=text, title=title))


def pairwise(gold: list[int], pred: list[str]) -> dict[str, float]:
    tp = fp = fn = 0
    for i in range(len(gold)):
        for j in range(i + 1, len(gold)):
            same, together = gold[i] == gold[j], pred[i] == pred[j]
            tp += same and together
            fp += together and not same
            fn += same and not together
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    by_gold, by_pred = defaultdict(set), defaultdict(set)
    for i, (g, c) in enumerate(zip(gold, pred, strict=True)):
        by_gold[g].add(i)
        by_pred[c].add(i)
    bp = sum(
        len(by_gold[g] & by_pred[c]) / len(by_pred[c]) for g, c in zip(gold, pred, strict=True)
    )
    br = sum(
        len(by_gold[g] & by_pred[c]) / len(by_gold[g]) for g, c in zip(gold, pred, strict=True)
    )
    bp, br = bp / len(gold), br / len(gold)
    return {
        "pairwise_precision": round(p, 3), "pairwise_recall": round(r, 3),
        "pairwise_f1": round(2 * p * r / (p + r), 3) if p + r else 0.0,
        "bcubed_f1": round(2 * bp * br / (bp + br), 3) if bp + br else 0.0,
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--split", default="val", choices=("train", "val"))
    parser.add_argument("--limit", type=int, help="first N stories only")
    defaults = Settings()
    parser.add_argument("--story-threshold", type=float, default=defaults.story_threshold)
    parser.add_argument("--near-threshold", type=float, default=defaults.near_duplicate_threshold)
    args = parser.parse_args()
    if not (DATA / f"{args.split}.source").exists():
        print(f"NeuS data not found under {DATA}: nothing to evaluate.", file=sys.stderr)
        return 0
    reports = load(args.split, args.limit)
    rng = random.Random(2024)
    order = list(range(len(reports)))
    rng.shuffle(order)
    with redis_server() as url:
        client = redis.Redis.from_url(url, decode_responses=True)
        index = DedupIndex(client, Keys(), window=72 * 3600, near_threshold=args.near_threshold,
                           story_threshold=args.story_threshold, claim_ttl=3600)  # fmt: skip
        gold, pred, ids = [], [], {}
        for n in order:
            story, title, text = reports[n]
            item_id, placement = placed(index, n, title, text, f"outlet{n % 3}")
            ids[n] = item_id
            gold.append(story)
            pred.append(placement.story_id)
        stories = pairwise(gold, pred)
        # near-duplicates: copies of every report must be found; rewrites must not be called copies
        found = wrong = 0
        for n in order:
            story, title, text = reports[n]
            copy_title, copy_text = wire_copy(title, text, rng)
            _, placement = placed(index, 100_000 + n, copy_title, copy_text, "wire")
            if placement.outcome is Outcome.NEAR_DUPLICATE and placement.duplicate_of == ids[n]:
                found += 1
            elif placement.outcome is Outcome.NEAR_DUPLICATE:
                wrong += 1
        # the outlets' own reports are rewrites, never copies: any flagged is a false positive
        rewrites_flagged = sum(
            1
            for n in order
            if client.hget(Keys().entry(ids[n]), "outcome") == Outcome.NEAR_DUPLICATE
        )
    copies = len(order)
    precision_den = found + wrong + rewrites_flagged
    report(
        "eval_dedup",
        split=args.split,
        reports=len(reports),
        stories=len(set(gold)),
        **stories,
        near_duplicate_recall=round(found / copies, 4),
        near_duplicate_precision=round(found / precision_den, 4) if precision_den else 1.0,
        rewrites_taken_for_copies=rewrites_flagged,
        story_threshold=args.story_threshold,
        near_threshold=args.near_threshold,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
