"""The decision, from what the index's scripts returned: is a report a copy of an earlier
original, and if not, which candidate story (if any) it belongs to. Plain functions on plain
data: no Redis here (DedupIndex reads and records; this decides)."""

from __future__ import annotations

import numpy as np

from monitor.dedup.calls import Found, NearCandidate, StorySummary
from monitor.dedup.fingerprint import decode_signature, jaccard
from monitor.dedup.signals import Candidate, Report, StoryModel, signals, title_overlap
from monitor.model import Outcome, Placement

CONTAINMENT = 0.7  # share of the smaller text's 3-grams that makes a trimmed/padded copy
CONTAINED_JACCARD = 0.3


def near_duplicate(
    signature: np.ndarray, shingles: int, found: list[NearCandidate], threshold: float
) -> Placement | None:
    """The best earlier original whose text this one repeats (`found`: the members of its
    LSH buckets, as dedup/reads.py gathers them): estimated Jaccard of the word 3-grams
    at least `threshold`, or (a copy trimmed or padded with outlet boilerplate) most of the
    smaller text's 3-grams shared, with a Jaccard of at least CONTAINED_JACCARD."""
    best: Placement | None = None
    for candidate in sorted(found, key=lambda c: c.id):  # each id once
        if not (candidate.minhash and candidate.story):
            continue  # expired meanwhile
        score = jaccard(signature, decode_signature(candidate.minhash))
        if not (score >= threshold or contained(score, shingles, candidate.shingles)):
            continue
        if best is None or score > best.similarity:
            best = Placement(
                outcome=Outcome.NEAR_DUPLICATE,
                story_id=candidate.story,
                # point at the first copy, not a copy of it
                duplicate_of=candidate.duplicate_of or candidate.id,
                similarity=score,
            )
    return best


def closest_story(
    model: StoryModel,
    threshold: float,
    report: Report,
    found: list[Found],
    summaries: list[StorySummary],
) -> tuple[float, str] | None:
    """The candidate story the model finds likeliest, with its probability, if that reaches
    the threshold."""
    best: tuple[float, str] | None = None
    for candidate in candidate_stories(report, found, summaries):
        p = model.probability(signals(report, candidate))
        if p >= threshold and (best is None or (p, candidate.story) > best):
            best = (p, candidate.story)
    return best


def candidate_stories(
    report: Report, found: list[Found], summaries: list[StorySummary]
) -> list[Candidate]:
    """The candidate stories of a report, from what dedup/reads.py gathered: each story's
    summary, and its best member cosine, title overlap and wires over its candidates."""
    stories: dict[str, Candidate] = {}
    for s in summaries:
        stories[s.story] = Candidate(
            story=s.story,
            size=int(s.size or 1),
            oldest=float(s.oldest or report.time),
            newest=float(s.newest or report.time),
            centroid=float(s.centroid) if s.centroid else -1.0,  # -1: its one member's cosine
            names=frozenset(s.names.split("|")) if s.names else frozenset(),
            figures=frozenset(s.figures.split("|")) if s.figures else frozenset(),
        )
    for f in found:
        candidate = stories[f.story]
        candidate.best = max(candidate.best, f.cosine)
        overlap = title_overlap(report.title, frozenset(f.title_terms.split()))
        candidate.title = max(candidate.title, overlap)
        candidate.wires.update(w for w in f.wires.split(",") if w)
    for candidate in stories.values():
        if candidate.centroid < 0:
            candidate.centroid = candidate.best
    ranked = sorted((c.centroid for c in stories.values()), reverse=True)
    for candidate in stories.values():  # the best of the others: the first, or the second
        others = ranked[1:] if candidate.centroid == ranked[0] else ranked
        candidate.rival = others[0] if others else 0.0
    return list(stories.values())


def contained(jaccard: float, shingles: int, other: str | None) -> bool:
    """Whether the smaller of two shingle sets lies mostly inside the other, from their
    Jaccard estimate and sizes: |A∩B| = J(|A|+|B|)/(1+J)."""
    if jaccard < CONTAINED_JACCARD or not other or not shingles:
        return False
    sizes = (shingles, int(other))
    shared = jaccard * sum(sizes) / (1 + jaccard)
    return shared / min(sizes) >= CONTAINMENT
