"""Dedup quality on real news: the story development sets (../shared/data/stories-dev).

Every report goes through the real DedupIndex (a throwaway redis-server), one at a time, in
the order a feed would give them (dated sets by report time, NeuS in a fixed shuffle), and
the stories it forms are compared with the gold ones: pairwise precision/recall/F1 and
B-cubed F1. In process, the placing clock is simulated (`now` is each report's time, what a
daemon sees on live news) or, with `--clock wall`, today's (an archive replayed); the index
goes by report times either way, so the two agree. `--replay` also runs the set as a feed
through what a user runs, `monitor replay --json --fresh`, oldest and newest first
(eval_replay.py), and prints it beside: a gap between the paths is a bug.

Then (NeuS only) wire copies are generated from the reports (a new headline, a dateline, a
few words changed, the last sentence cut, outlet boilerplate appended) and must come out as
near-duplicates of their original, while the other outlets' rewrites must not.

The data is read at run time and never copied into the repository (its licences: evaluation
use only). Without it the script says so and exits 0.

    python benchmarks/eval_dedup.py [--corpus neus|gva-dev|giveme5w1h|all] [--split val] [--replay]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import re
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from _support import redis_server, report
from corpora import CORPORA, Report, load, path

from monitor.config import Settings
from monitor.dedup.index import DedupIndex
from monitor.dedup.store import Candidates
from monitor.model import Article, Item, Outcome, Placement, oldest_first
from monitor.store.keys import Keys

DATELINES = [
    "WASHINGTON (Reuters) - ",
    "NEW YORK (AP) — ",
    "LONDON, June 19 (Reuters) - ",
    "(AFP) - ",
]
BOILERPLATE = [
    "Reporting by staff; editing by the desk.",
    "Copyright 2024 The Associated Press.",
    "This story has been corrected.",
    "Sign up for our daily briefing.",
]
SWAPS = {
    "said": "stated",
    "says": "states",
    "the": "a",
    "on": "upon",
    "after": "following",
    "new": "fresh",
    "big": "large",
    "told": "said to",
    "also": "as well",
}


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


def item_of(
    r: Report, *, guid: str = "", title: str = "", source: str = "", seen: datetime | None = None
) -> Item:
    """The report as polling would give it: its date as published, first seen then (or at
    `seen`, the wall clock)."""
    return Item(
        guid=guid or f"urn:eval:{r.key}",
        url=f"https://{source or r.source}/{r.key}",
        title=title or r.title,
        source=source or r.source,
        feed="eval",
        published=r.time,
        first_seen=seen or r.time,
    )


def dated(reports: list[Report], hours: float) -> list[Report]:
    """The reports dated evenly over `hours`, in their order: undated stories of one day's
    roundups, which share vocabulary (the same people, the same institutions), where only
    the words tell one story from another; precision should not fall below undated."""
    start = datetime(2024, 6, 3, 6, tzinfo=UTC)
    step = hours * 3600 / max(len(reports), 1)
    return [
        dataclasses.replace(r, time=start + timedelta(seconds=n * step))
        for n, r in enumerate(reports)
    ]


def in_replay_order(reports: list[Report]) -> list[Report]:
    """The reports in the order `monitor replay` and a poll process them (oldest first, ties
    by item id: monitor.model.oldest_first), so that both paths decide alike."""
    by_id = {item_of(r).id: r for r in reports}
    return [by_id[item.id] for item in oldest_first(item_of(r) for r in reports)]


def now_of(r: Report, wall: bool) -> float | None:
    """The simulated clock: the report's time (undated: the wall clock)."""
    return None if wall or r.time is None else r.time.timestamp()


@contextmanager
def dedup_index(settings: Settings) -> Iterator[DedupIndex]:
    with redis_server() as url:
        client = redis.Redis.from_url(url, decode_responses=True)
        yield DedupIndex.from_settings(client, Keys(), settings)


def pairwise(gold: list[str], pred: list[str]) -> dict[str, float]:
    by_gold: dict[str, set[int]] = defaultdict(set)
    by_pred: dict[str, set[int]] = defaultdict(set)
    for i, (g, c) in enumerate(zip(gold, pred, strict=True)):
        by_gold[g].add(i)
        by_pred[c].add(i)
    cells: dict[tuple[str, str], int] = defaultdict(int)
    for g, c in zip(gold, pred, strict=True):
        cells[g, c] += 1
    tp = sum(n * (n - 1) // 2 for n in cells.values())
    together = sum(len(s) * (len(s) - 1) // 2 for s in by_pred.values())
    same = sum(len(s) * (len(s) - 1) // 2 for s in by_gold.values())
    p = tp / together if together else 0.0
    r = tp / same if same else 0.0
    bp = sum(cells[g, c] / len(by_pred[c]) for g, c in zip(gold, pred, strict=True)) / len(gold)
    br = sum(cells[g, c] / len(by_gold[g]) for g, c in zip(gold, pred, strict=True)) / len(gold)
    return {
        "pairwise_precision": round(p, 3),
        "pairwise_recall": round(r, 3),
        "pairwise_f1": round(2 * p * r / (p + r), 3) if p + r else 0.0,
        "bcubed_f1": round(2 * bp * br / (bp + br), 3) if bp + br else 0.0,
    }


class CandidateRecall:
    """Watches the index's look-ups: for each report whose gold story already has an
    original in the index (placed earlier, inside the window), whether one of those is
    among the report's candidates (same-story candidates or LSH bucket members). A report
    whose story is not among its candidates cannot join it, whatever the model says.
    `figures()` also gives the share over reports whose story had an original at any time
    before (a follow-up more than a window after the story's last report is not found)."""

    def __init__(self, index: DedupIndex) -> None:
        self.window = index.window
        self.looked: dict[str, set[str]] = {}  # item id -> its candidates' ids
        self.originals: dict[str, list[tuple[float, str]]] = defaultdict(list)  # by gold story
        self.reachable = self.retrieved = self.ever = self.ever_retrieved = 0
        look = index.store.look

        def watched(item_id: str, *args: Any) -> Any:
            found = look(item_id, *args)
            if isinstance(found, Candidates):
                ids = {f.id for f in found.found} | {n.id for n in found.near}
                self.looked[item_id] = ids
            return found

        index.store.look = watched  # type: ignore[method-assign]

    def placed(self, r: Report, item: Item, placement: Placement, time: float) -> None:
        looked = self.looked.get(item.id, set())
        if self.originals[r.story]:
            self.ever += 1
            self.ever_retrieved += any(i in looked for _, i in self.originals[r.story])
        earlier = {i for t, i in self.originals[r.story] if t >= time - self.window}
        if earlier:
            self.reachable += 1
            self.retrieved += bool(earlier & looked)
        if placement.outcome.is_original:
            self.originals[r.story].append((time, item.id))

    def figures(self) -> dict[str, float]:
        return {
            "candidate_recall": round(self.retrieved / max(self.reachable, 1), 3),
            "candidate_recall_any_time": round(self.ever_retrieved / max(self.ever, 1), 3),
        }


def stories(index: DedupIndex, reports: list[Report], wall: bool) -> tuple[dict, dict]:
    """Places every report; returns the figures and each report's placement by key."""
    placements: dict[str, Placement] = {}
    recall = CandidateRecall(index)
    started = time.perf_counter()
    for r in in_replay_order(reports):
        seen = datetime.now(UTC) if wall or r.time is None else None
        item = item_of(r, seen=seen)
        now = now_of(r, wall)
        placements[r.key] = index.place(item, Article(text=r.text, title=r.title), now)
        when = r.time.timestamp() if r.time else time.time()
        recall.placed(r, item, placements[r.key], when)
    ms = (time.perf_counter() - started) * 1000 / max(len(reports), 1)
    gold = [r.story for r in reports]
    figures = pairwise(gold, [placements[r.key].story_id for r in reports])
    figures |= {
        **recall.figures(),
        "reports": len(reports),
        "stories": len(set(gold)),
        "ms_per_report": round(ms, 2),
    }
    return figures, placements


def near_duplicates(index: DedupIndex, reports: list[Report], placements: dict, wall: bool) -> dict:
    """Wire copies of every report must be found; rewrites must not be called copies."""
    rng = random.Random(2024)
    found = wrong = 0
    for r in reports:
        title, text = wire_copy(r.title, r.text, rng)
        item = item_of(r, guid=f"urn:copy:{r.key}", title=title, source="wire")
        if item.first_seen is None:
            item = item_of(
                r, guid=f"urn:copy:{r.key}", title=title, source="wire", seen=datetime.now(UTC)
            )
        placement = index.place(item, Article(text=text, title=title), now_of(r, wall))
        original = item_of(r).id
        if placement.outcome is Outcome.NEAR_DUPLICATE and placement.duplicate_of == original:
            found += 1
        elif placement.outcome is Outcome.NEAR_DUPLICATE:
            wrong += 1
    flagged = sum(1 for p in placements.values() if p.outcome is Outcome.NEAR_DUPLICATE)
    denominator = found + wrong + flagged
    return {
        "near_duplicate_recall": round(found / len(reports), 4),
        "near_duplicate_precision": round(found / denominator, 4) if denominator else 1.0,
        "rewrites_taken_for_copies": flagged,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", default="neus", choices=(*CORPORA, "all"))
    parser.add_argument("--split", default="val", choices=("train", "val"), help="NeuS only")
    parser.add_argument("--limit", type=int, help="first N stories only")
    parser.add_argument("--clock", default="report", choices=("report", "wall"))
    parser.add_argument("--no-copies", action="store_true", help="skip the near-duplicate part")
    parser.add_argument(
        "--replay",
        action="store_true",
        help="also the product path: the set as a feed through `monitor replay --json --fresh`,"
        " oldest and newest first (eval_replay.py), printed beside the in-process figures",
    )
    defaults = Settings()
    parser.add_argument("--story-threshold", type=float, default=defaults.story_threshold)
    parser.add_argument("--near-threshold", type=float, default=defaults.near_duplicate_threshold)
    parser.add_argument(
        "--neus-hours",
        type=float,
        help="date NeuS's reports evenly over this many hours, in feed order (a day's roundup)",
    )
    parser.add_argument("--window-hours", type=float, default=defaults.story_window_hours)
    args = parser.parse_args()
    settings = Settings(
        story_threshold=args.story_threshold,
        near_duplicate_threshold=args.near_threshold,
        story_window_hours=args.window_hours,
    )
    wall = args.clock == "wall"
    for corpus in CORPORA if args.corpus == "all" else (args.corpus,):
        if not path(corpus, args.split).exists():
            print(f"{corpus}: data not found at {path(corpus, args.split)}", file=sys.stderr)
            continue
        reports = load(corpus, args.split, args.limit)
        if corpus == "neus" and args.neus_hours:
            reports = dated(reports, args.neus_hours)
        with dedup_index(settings) as index:
            figures, placements = stories(index, reports, wall)
            if corpus == "neus" and not args.no_copies:
                figures |= near_duplicates(index, reports, placements, wall)
        split = {"split": args.split} if corpus == "neus" else {}
        report(
            "eval_dedup",
            corpus=corpus,
            **split,
            clock=args.clock,
            **figures,
            story_threshold=args.story_threshold,
        )
        if args.replay:
            through_replay(corpus, reports)
    return 0


def through_replay(corpus: str, reports: list[Report]) -> None:
    """The same reports through what a user runs (`monitor replay`), both orders."""
    import tempfile
    from pathlib import Path

    from _support import ROOT
    from eval_replay import replayed

    for order in ("oldest first", "newest first"):
        given = reports if order == "oldest first" else reports[::-1]
        with tempfile.TemporaryDirectory(prefix="monitor-eval-") as work:
            placed = replayed(given, ROOT, Path(work))
        kept = [r for r in reports if r.key in placed]
        figures = pairwise([r.story for r in kept], [placed[r.key] for r in kept])
        report("eval_dedup", corpus=corpus, path="monitor replay", order=order, **figures)


if __name__ == "__main__":
    sys.exit(main())
