"""Refit the same-story model (monitor/dedup/story_model.json) from the development sets.

Every report of NeuS train, gva-dev and giveme5w1h goes through the real DedupIndex (a
throwaway redis-server, the report clock of eval_dedup.py) in replay order. For each, the
candidate stories the index finds (dedup/decide.py candidate_stories) are turned into
signals (dedup/signals.py) and labelled by the gold story; the report is then recorded in
its gold story (a near-duplicate stays one), so the index holds the stories a perfect
decision would have made. A logistic regression (numpy, Newton's method, a small L2
penalty) is fitted on the examples, each set weighing the same in total, and written as
data, its bias shifted so that the decision at 0.5 (Settings.story_threshold) is the fitted
model's at `--threshold`: examples are mostly other stories' candidates, and a report that
joins wrongly pulls its next ones along, so the fitted probability is asked for more than
a half (0.6: eval_dedup.py's best on all three sets). NeuS val is kept out, for
eval_dedup.py.

Before the final fit, the examples are split in folds by gold story (a story's reports all
in one fold): fitted on the other folds, each fold's decisions are scored (the likeliest
candidate story at or above the threshold, else a new story), so what is printed per set
is a figure on stories the model did not see.

    python benchmarks/fit_story_model.py [--out monitor/dedup/story_model.json]
        [--folds 2] [--cache FILE]

`--cache FILE`: keep the gathered reports and candidates (pickle) and read them from there
next time: new signals over the same candidates are tried in seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import pickle
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import redis
from _support import ROOT, redis_server, report
from corpora import Report, load, path
from eval_dedup import in_replay_order, item_of, now_of

from monitor.config import Settings
from monitor.dedup import signals as story_signals
from monitor.dedup.decide import candidate_stories, closest_story, near_duplicate
from monitor.dedup.index import DedupIndex
from monitor.dedup.signals import StoryModel
from monitor.dedup.store import Candidates
from monitor.model import Article, Item, Outcome, Placement, stable_id
from monitor.store.keys import Keys

SETS = (("neus", "train"), ("gva-dev", "val"), ("giveme5w1h", "val"))
L2 = 1e-3
UNFITTED = story_signals.StoryModel((0.0,) * len(story_signals.SIGNALS), 0.0)


@dataclass(slots=True)
class Case:
    """One report's decision as the index saw it: its candidate stories, and which of them
    (if any) is its gold story."""

    key: str  # the report's, in its corpus
    story: str  # gold
    report: story_signals.Report
    candidates: list[story_signals.Candidate]
    target: str | None  # the index's id of the gold story (None: its first report)


@dataclass(slots=True)
class Gathered:
    cases: list[Case] = field(default_factory=list)
    reachable: int = 0  # reports whose gold story was in the index
    retrieved: int = 0  # ... and among their candidates


class Teacher:
    """Takes over an index's decision: records each report's candidate stories, and places
    the report in its gold story whatever the candidates say. With a `policy` (a model),
    the report goes where that model puts it instead, so the index holds the stories the
    model makes, mistakes included, and a candidate is right when it is the story holding
    most of the report's gold story (if most of its members are of it)."""

    def __init__(self, index: DedupIndex, policy: story_signals.StoryModel | None = None) -> None:
        self.index = index
        self.policy = policy
        self.members: dict[str, Counter[str]] = defaultdict(Counter)  # index story -> golds
        self.gathered = Gathered()
        self.gold = self.key = ""
        index._placement_from = self._placement_from  # type: ignore[method-assign]

    def target(self) -> str | None:
        """The index's story of the gold story: the one holding most of its reports, among
        those mostly of it."""
        held = [
            (golds[self.gold], story)
            for story, golds in self.members.items()
            if golds[self.gold] and golds.most_common(1)[0][0] == self.gold
        ]
        return max(held)[1] if held else None

    def _placement_from(
        self,
        item: Item,
        signature: np.ndarray,
        shingles: int,
        report: story_signals.Report,
        candidates: Candidates,
    ) -> Placement:
        copy = near_duplicate(signature, shingles, candidates.near, self.index.near_threshold)
        if copy:
            return copy
        target = self.target()
        stories = candidate_stories(report, candidates.found, candidates.stories)
        self.gathered.cases.append(Case(self.key, self.gold, report, stories, target))
        if target is not None:
            self.gathered.reachable += 1
            self.gathered.retrieved += any(c.story == target for c in stories)
        if self.policy is not None:
            found, summaries = candidates.found, candidates.stories
            best = closest_story(self.policy, self.policy.threshold, report, found, summaries)
            target = best[1] if best else None
        if target is None:
            return Placement(outcome=Outcome.NEW_STORY, story_id=stable_id("story", item.key))
        return Placement(outcome=Outcome.SAME_STORY, story_id=target, similarity=1.0)

    def place(self, r: Report) -> None:
        self.gold, self.key = r.story, r.key
        item = item_of(r)
        placement = self.index.place(item, Article(text=r.text, title=r.title), now_of(r, False))
        self.members[placement.story_id][r.story] += 1


def gather(
    corpus: str, split: str, settings: Settings, policy: story_signals.StoryModel | None = None
) -> Gathered:
    with redis_server() as url:
        client = redis.Redis.from_url(url, decode_responses=True)
        index = DedupIndex(
            client,
            Keys(),
            window=settings.window_seconds,
            near_threshold=settings.near_duplicate_threshold,
            story_threshold=settings.story_threshold,
            model=UNFITTED,  # the teacher decides; the shipped model may be for other signals
        )
        teacher = Teacher(index, policy)
        for r in in_replay_order(load(corpus, split)):
            teacher.place(r)
    return teacher.gathered


def examples(cases: list[Case]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Signals, labels and the case each row belongs to."""
    rows, labels, owner = [], [], []
    for n, case in enumerate(cases):
        for candidate in case.candidates:
            rows.append(story_signals.signals(case.report, candidate))
            labels.append(1.0 if candidate.story == case.target else 0.0)
            owner.append(n)
    width = len(story_signals.SIGNALS)
    return np.array(rows).reshape(-1, width), np.array(labels), np.array(owner, dtype=int)


def fit(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, float]:
    """Weighted logistic regression by Newton's method; returns weights and bias."""
    mean, scale = x.mean(0), x.std(0) + 1e-9
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    beta = np.zeros(z.shape[1])
    penalty = L2 * w.sum() * np.eye(z.shape[1])
    penalty[-1, -1] = 0
    for _ in range(50):
        p = 1 / (1 + np.exp(-np.clip(z @ beta, -50, 50)))
        gradient = z.T @ (w * (p - y)) + penalty @ beta
        hessian = (z * (w * p * (1 - p))[:, None]).T @ z + penalty
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    weights = beta[:-1] / scale
    return weights, float(beta[-1] - (weights * mean).sum())


def fold_of(story: str, folds: int) -> int:
    return int(hashlib.blake2b(story.encode(), digest_size=4).hexdigest(), 16) % folds


def decisions(cases: list[Case], weights: np.ndarray, bias: float, threshold: float) -> dict:
    """The model's decision for each case, scored against its gold: pairs of a report and
    its gold story's earlier reports joined (recall) and joined rightly (precision), by
    report (a report joins one story: right or wrong)."""
    right = wrong = missed = new_right = 0
    for case in cases:
        best: tuple[float, str] | None = None
        for candidate in case.candidates:
            x = np.array(story_signals.signals(case.report, candidate))
            p = 1 / (1 + np.exp(-np.clip(x @ weights + bias, -50, 50)))
            if p >= threshold and (best is None or (p, candidate.story) > best):
                best = (float(p), candidate.story)
        chosen = best[1] if best else None
        if case.target is None:
            new_right += chosen is None
            wrong += chosen is not None
        elif chosen == case.target:
            right += 1
        else:
            missed += 1
            wrong += chosen is not None
    precision = right / (right + wrong) if right + wrong else 0.0
    recall = right / (right + missed) if right + missed else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "join_precision": round(precision, 3),
        "join_recall": round(recall, 3),
        "join_f1": round(f1, 3),
    }


def weighted(sets: dict[str, list[Case]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All sets' examples, each set weighing the same in total."""
    xs, ys, ws = [], [], []
    for cases in sets.values():
        x, y, _ = examples(cases)
        xs.append(x)
        ys.append(y)
        ws.append(np.full(len(y), 1.0 / max(len(y), 1)))
    return np.vstack(xs), np.concatenate(ys), np.concatenate(ws)


def cross_validated(sets: dict[str, list[Case]], folds: int, threshold: float) -> None:
    """Each set's decisions on the stories of one fold, by a model fitted on the others."""
    scores: dict[str, list[dict]] = {name: [] for name in sets}
    for k in range(folds):
        train = {n: [c for c in cases if fold_of(c.story, folds) != k] for n, cases in sets.items()}
        weights, bias = fit(*weighted(train))
        for name, cases in sets.items():
            held = [c for c in cases if fold_of(c.story, folds) == k]
            scores[name].append(decisions(held, weights, bias, threshold))
    for name, rows in scores.items():
        mean = {key: round(sum(r[key] for r in rows) / len(rows), 3) for key in rows[0]}
        report("fit_story_model", set=name, folds=folds, **mean)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=ROOT / "monitor" / "dedup" / "story_model.json")
    parser.add_argument("--window-hours", type=float, default=Settings().story_window_hours)
    parser.add_argument("--sets", default=",".join(f"{c}/{s}" for c, s in SETS))
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.6,
        help="the fitted probability a report joins at (folded into the bias as 0.5)",
    )
    parser.add_argument("--cache", type=Path, help="gathered candidates (pickle)")
    parser.add_argument(
        "--policy",
        type=Path,
        help="a model whose own stories are gathered too (its mistakes become examples)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print figures, write nothing")
    args = parser.parse_args()
    settings = Settings(story_window_hours=args.window_hours)
    names = args.sets.split(",")
    policy = StoryModel.load(args.policy) if args.policy else None
    sets: dict[str, list[Case]] = {}
    if args.cache and args.cache.exists():
        sets = pickle.loads(args.cache.read_bytes())
    runs = [(name, None) for name in names] + ([(n, policy) for n in names] if policy else [])
    for name, model in runs:
        stored = f"{name}@{args.policy}" if model else name
        if stored in sets:
            continue
        corpus, split = name.split("/")
        if not path(corpus, split).exists():
            print(f"{corpus}: data not found at {path(corpus, split)}", file=sys.stderr)
            return 1
        gathered = gather(corpus, split, settings, model)
        sets[stored] = gathered.cases
        report(
            "fit_story_model",
            set=stored,
            reports=len(gathered.cases),
            reports_with_an_earlier_report=gathered.reachable,
            gold_story_among_candidates=round(gathered.retrieved / max(gathered.reachable, 1), 3),
        )
    if args.cache:
        args.cache.write_bytes(pickle.dumps(sets))
    sets = {name: sets[name] + (sets[f"{name}@{args.policy}"] if policy else []) for name in names}
    if args.folds > 1:
        cross_validated(sets, args.folds, args.threshold)
    weights, bias = fit(*weighted(sets))
    bias -= math.log(args.threshold / (1 - args.threshold))  # the threshold folded in: 0.5
    model = {
        "signals": list(story_signals.SIGNALS),
        "weights": [round(float(v), 5) for v in weights],
        "bias": round(bias, 5),
        "threshold": 0.5,
        "fitted_on": names,
        "window_hours": args.window_hours,
    }
    if not args.dry_run:
        args.out.write_text(json.dumps(model, indent=1) + "\n")
    report(
        "fit_story_model",
        **dict(zip(model["signals"], model["weights"], strict=True)),
        bias=model["bias"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
