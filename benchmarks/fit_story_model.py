"""Refit the same-story model (monitor/dedup/story_model.json) from the development sets.

Every report of NeuS train, gva-dev and giveme5w1h goes through the real DedupIndex (a
throwaway redis-server, the simulated clock of eval_dedup.py) in feed order. For each, the
candidate stories the index finds are turned into signals (monitor/dedup/signals.py) and
labelled by the gold story; the report is then recorded in its gold story, so the index
holds the stories a perfect decision would have made. A logistic regression (numpy,
Newton's method, a small L2 penalty) is fitted on all the examples, each set weighing the
same in total, and written as data. NeuS val is kept out, for eval_dedup.py.

    python benchmarks/fit_story_model.py [--out monitor/dedup/story_model.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from _support import ROOT, report
from corpora import Report, load, path
from eval_dedup import dedup_index, item_of, now_of

from monitor.config import Settings
from monitor.dedup import signals as story_signals
from monitor.dedup.decide import candidate_stories
from monitor.dedup.index import DedupIndex
from monitor.model import Article

SETS = (("neus", "train"), ("gva-dev", "val"), ("giveme5w1h", "val"))
L2 = 1e-3


class Teacher:
    """Wraps an index: records each candidate story's signals and label, and places the
    report in its gold story whatever the candidates say."""

    def __init__(self, index: DedupIndex) -> None:
        self.index = index
        self.rows: list[list[float]] = []
        self.labels: list[float] = []
        self.story_of: dict[str, str] = {}  # gold story -> index story id
        self.reachable = self.retrieved = 0
        self.gold = ""
        index._closest_story = self._closest_story  # type: ignore[method-assign]

    def _closest_story(self, report: story_signals.Report, found: list, summaries: list):
        target = self.story_of.get(self.gold)
        stories = candidate_stories(report, found, summaries)
        for candidate in stories:
            self.rows.append(story_signals.signals(report, candidate))
            self.labels.append(1.0 if candidate.story == target else 0.0)
        if target is not None:
            self.reachable += 1
            self.retrieved += any(c.story == target for c in stories)
            return (1.0, target)
        return None

    def place(self, r: Report) -> None:
        self.gold = r.story
        item = item_of(r)
        placement = self.index.place(item, Article(text=r.text, title=r.title), now_of(r, False))
        self.story_of.setdefault(r.story, placement.story_id)


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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=ROOT / "monitor" / "dedup" / "story_model.json")
    parser.add_argument("--window-hours", type=float, default=Settings().story_window_hours)
    parser.add_argument("--sets", default=",".join(f"{c}/{s}" for c, s in SETS))
    args = parser.parse_args()
    settings = Settings(story_window_hours=args.window_hours)
    sets = [tuple(name.split("/")) for name in args.sets.split(",")]
    xs, ys, ws = [], [], []
    for corpus, split in sets:
        if not path(corpus, split).exists():
            print(f"{corpus}: data not found at {path(corpus, split)}", file=sys.stderr)
            return 1
        with dedup_index(settings) as index:
            teacher = Teacher(index)
            for r in load(corpus, split):
                teacher.place(r)
        x, y = np.array(teacher.rows), np.array(teacher.labels)
        xs.append(x)
        ys.append(y)
        ws.append(np.full(len(y), 1.0 / len(y)))
        retrieved = round(teacher.retrieved / max(teacher.reachable, 1), 3)
        report(
            "fit_story_model",
            corpus=corpus,
            split=split,
            examples=len(y),
            positives=int(y.sum()),
            reports_with_an_earlier_report=teacher.reachable,
            gold_story_among_candidates=retrieved,
        )
    weights, bias = fit(np.vstack(xs), np.concatenate(ys), np.concatenate(ws))
    model = {
        "signals": list(story_signals.SIGNALS),
        "weights": [round(float(v), 5) for v in weights],
        "bias": round(bias, 5),
        "threshold": 0.5,
        "fitted_on": [f"{c}/{s}" for c, s in sets],
        "window_hours": args.window_hours,
    }
    args.out.write_text(json.dumps(model, indent=1) + "\n")
    report(
        "fit_story_model",
        **dict(zip(model["signals"], model["weights"], strict=True)),
        bias=model["bias"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
