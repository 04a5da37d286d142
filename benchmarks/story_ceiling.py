"""How well can any threshold on the project's TF-IDF cosine group the dev sets' stories?

eval_dedup.py measures what the daemon does: one report at a time, joined to the closest
earlier story. This script asks what the similarity itself allows, with every report in view
at once and the threshold chosen on the answers: the best pairwise F1 of "same story iff
cosine >= t" over all pairs, the best recall at precision >= 0.90, how often a report's
nearest neighbour is from its own story, and the best F1 of offline average-link clustering.
If these stay below the target, no online clustering on this similarity can reach it.
On the dated sets (gva-dev, giveme5w1h) the same figures are printed without time and with
a hard window (pairs more than --window-hours apart never the same story), side by side.

    python benchmarks/story_ceiling.py [--corpus neus|gva-dev|giveme5w1h|all] [--split val]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from _support import report
from corpora import CORPORA, Report, load, path

from monitor.dedup.fingerprint import features, tfidf


def similarities(reports: list[Report]) -> np.ndarray:
    """Cosine of every pair of reports, document frequencies taken over all of them."""
    counts = [features(r.title, r.text) for r in reports]
    df: dict[str, int] = {}
    for c in counts:
        for term in c:
            df[term] = df.get(term, 0) + 1
    column = {term: i for i, term in enumerate(df)}
    vectors = np.zeros((len(reports), len(column)), dtype=np.float64)
    for row, c in enumerate(counts):
        for term, weight in tfidf(c, df, len(reports)).weights.items():
            vectors[row, column[term]] = weight
    return vectors @ vectors.T


def threshold_sweep(scores: np.ndarray, same: np.ndarray) -> dict[str, float]:
    order = np.argsort(-scores, kind="stable")
    hits = np.cumsum(same[order])
    precision = hits / np.arange(1, len(order) + 1)
    recall = hits / same.sum()
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    best = int(f1.argmax())
    strict = precision >= 0.90
    return {
        "pair_f1": round(float(f1[best]), 3),
        "pair_precision": round(float(precision[best]), 3),
        "pair_recall": round(float(recall[best]), 3),
        "pair_threshold": round(float(scores[order][best]), 3),
        "recall_at_p90": round(float(recall[strict].max()) if strict.any() else 0.0, 3),
        "f1_at_p90": round(float(f1[strict].max()) if strict.any() else 0.0, 3),
    }


def average_link(sim: np.ndarray, threshold: float) -> np.ndarray:
    """Clusters merged greedily while the average similarity between two is >= threshold."""
    n = len(sim)
    link = sim.copy()
    np.fill_diagonal(link, -np.inf)
    size = np.ones(n)
    label = np.arange(n)
    alive = np.ones(n, dtype=bool)
    while True:
        i, j = np.unravel_index(int(link.argmax()), link.shape)
        if link[i, j] < threshold:
            return label
        merged = (link[i] * size[i] + link[j] * size[j]) / (size[i] + size[j])
        link[i], link[:, i] = merged, merged
        link[i, i] = -np.inf
        link[j], link[:, j] = -np.inf, -np.inf
        size[i] += size[j]
        alive[j] = False
        label[label == j] = i


def pairwise_f1(gold: np.ndarray, label: np.ndarray) -> tuple[float, float, float]:
    upper = np.triu_indices(len(gold), 1)
    same = (gold[:, None] == gold[None, :])[upper]
    together = (label[:, None] == label[None, :])[upper]
    tp = float((same & together).sum())
    p = tp / max(together.sum(), 1)
    r = tp / same.sum()
    return (2 * p * r / (p + r) if p + r else 0.0), p, r


def ceiling(gold: np.ndarray, sim: np.ndarray) -> dict[str, float]:
    upper = np.triu_indices(len(gold), 1)
    figures = threshold_sweep(sim[upper], (gold[:, None] == gold[None, :])[upper])
    sim = sim.copy()
    np.fill_diagonal(sim, -np.inf)
    figures["nearest_is_same_story"] = round(float((gold[sim.argmax(1)] == gold).mean()), 3)
    if len(gold) <= 3000:  # O(n^3) at worst: not NeuS train
        best = max(
            ((*pairwise_f1(gold, average_link(sim, t)), t) for t in np.arange(0.1, 0.45, 0.05)),
        )
        figures |= {
            "average_link_f1": round(best[0], 3),
            "average_link_precision": round(best[1], 3),
            "average_link_recall": round(best[2], 3),
            "average_link_threshold": round(float(best[3]), 2),
        }
    return figures


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", default="neus", choices=(*CORPORA, "all"))
    parser.add_argument("--split", default="val", choices=("train", "val"), help="NeuS only")
    parser.add_argument("--window-hours", type=float, default=72.0)
    args = parser.parse_args()
    for corpus in CORPORA if args.corpus == "all" else (args.corpus,):
        if not path(corpus, args.split).exists():
            print(f"{corpus}: data not found at {path(corpus, args.split)}", file=sys.stderr)
            continue
        reports = load(corpus, args.split)
        gold = np.array([r.story for r in reports])
        sim = similarities(reports)
        split = {"split": args.split} if corpus == "neus" else {}
        figures = ceiling(gold, sim)
        if reports[0].time is not None:
            hours = np.array([r.time.timestamp() / 3600 for r in reports])
            apart = np.abs(hours[:, None] - hours[None, :]) > args.window_hours
            timed = ceiling(gold, np.where(apart, -1.0, sim))
            figures = {"no_time": figures, f"window_{args.window_hours:g}h": timed}
        report("story_ceiling", corpus=corpus, **split, reports=len(reports), **figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
