"""A look's arithmetic, from the replies dedup/reads.py fetches (one server or a cluster's
masters alike): an article's TF-IDF vector and query terms from the document frequencies,
its same-story candidates ranked from the postings, their cosines and their stories'.
Pure functions, in the daemon rather than in a script on Redis's one thread (issue 31);
fingerprint.tfidf is the reference of the vector (tests/test_pipeline.py).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from monitor.dedup.calls import Found, StorySummary


@dataclass(frozen=True, slots=True)
class Vector:
    """An article's TF-IDF vector and where it is looked up and posted."""

    weights: dict[str, float]  # unit length, unrounded: what candidates are scored with
    stored: str  # JSON, 4 decimals: what the index keeps
    query: list[str]  # its heaviest terms and its names' terms, sorted


def vector(
    counts: dict[str, float],
    prior: list[float],
    df: list[int],
    documents: int,
    *,
    prior_documents: float,
    keep: int,
    query: int,
    names: list[str],
) -> Vector:
    """The article's vector and query terms: `df[i]` and `prior[i]` belong to the i-th term of
    `counts`, `documents` counts the window's originals."""
    terms = list(counts)
    scale = documents + prior_documents
    weights = [
        (1 + math.log(counts[t])) * math.log(scale / (df[i] + prior[i] + 1))
        for i, t in enumerate(terms)
    ]
    top, chosen = _heaviest(terms, weights, keep), _heaviest(terms, weights, query)
    norm = math.sqrt(sum(w * w for w in top.values())) or 1.0
    unit = {t: w / norm for t, w in top.items() if w > 0}
    stored = {t: float(f"{w:.4f}") for t, w in unit.items()}
    looked_up = [t for t, w in chosen.items() if w > 0]
    looked_up += [t for t in names if t in counts and t not in chosen]
    return Vector(unit, json.dumps(stored) if stored else "{}", sorted(looked_up))


def _heaviest(terms: list[str], weights: list[float], n: int) -> dict[str, float]:
    """The n heaviest terms (ties at the cut broken by the term), with their weights."""
    if n >= len(terms):
        return dict(zip(terms, weights, strict=True))
    cut = sorted(weights)[len(weights) - n]
    chosen = {t: w for t, w in zip(terms, weights, strict=True) if w > cut}
    tied = sorted(t for t, w in zip(terms, weights, strict=True) if w == cut)
    chosen.update((t, cut) for t in tied[: n - len(chosen)])
    return chosen


def ranked(
    query: list[str],
    postings: Sequence[list[str]],
    weights: dict[str, float],
    *,
    own: str,
    min_shared: int,
    limit: int,
) -> list[str]:
    """The candidates: ids sharing at least `min_shared` query terms (`postings[i]`: the
    latest ids posted under `query[i]`), best `limit` by the weight of what they share."""
    shared: dict[str, float] = {}
    for term, ids in zip(query, postings, strict=True):
        step = 1 + weights.get(term, 0) / 100
        for item in ids:
            shared[item] = shared.get(item, 0) + step
    shared.pop(own, None)
    best = [(item, value % 1) for item, value in shared.items() if value >= min_shared]
    best.sort(key=lambda pair: (-pair[1], pair[0]))
    return [item for item, _ in best[:limit]]


def scored(
    weights: dict[str, float], candidates: list[str], entries: list[list], summaries: dict
) -> tuple[list[Found], list[StorySummary]]:
    """The candidates found and their stories (each
    once). `entries[i]`: candidate i's terms, story, title terms, wires; `summaries`:
    story -> size, oldest, newest, centroid, names, figures."""
    found: list[Found] = []
    stories: list[StorySummary] = []
    seen: set[str] = set()
    for item, (terms, story, title, wires) in zip(candidates, entries, strict=True):
        if not (terms and story):
            continue
        score = sum(weights[t] * w for t, w in json.loads(terms).items() if t in weights)
        # rounded as the script rounds it
        found.append(Found(item, story, float(f"{score:.6f}"), title or "", wires or ""))
        if story in seen:
            continue
        seen.add(story)
        size, oldest, newest, centroid, known, figures = summaries[story]
        cosine = ""
        if centroid:
            dot = length = 0.0
            for t, w in json.loads(centroid).items():
                length += w * w
                if t in weights:
                    dot += weights[t] * w
            cosine = f"{dot / math.sqrt(length) if length > 0 else dot:.6f}"
        stories.append(
            StorySummary(
                story, size or "1", oldest or "", newest or "", cosine, known or "", figures or ""
            )
        )
    return found, stories


def bucket_fields(buckets: list[str], group: int) -> list[tuple[str, str]]:
    """(key suffix, field) of each band's bucket, in band order."""
    return [(f"{band}:{b[:group]}", b[group:]) for band, b in enumerate(buckets)]


def bucket_ids(replies: Sequence[str | None], own: str) -> list[str]:
    """The ids found in the buckets, each once, in order, the item's own left out."""
    seen, out = {own}, []
    for reply in replies:
        for item in (reply or "").split(","):
            if item and item not in seen:
                seen.add(item)
                out.append(item)
    return out
