"""What the dedup index shares with where it keeps its data: the `PlacementStore` interface
(one server: dedup/server.py; a Redis Cluster: dedup/spread.py), what a store's look-up
returns, and what both write for a placed item.

A placement is: the store looks (is the item known? else its candidates), the index decides
(dedup/index.py, the same for both), the store records; a record that finds the index
changed since the look says so, and the item is decided again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import redis

from monitor.dedup.analysis import Analysis
from monitor.dedup.calls import Found, NearCandidate, StorySummary
from monitor.dedup.fingerprint import encode_signature
from monitor.dedup.signals import Report
from monitor.model import Article, Item, Outcome, Placement
from monitor.store.keys import Keys

DOCUMENTS = "#documents"  # field of a generation's frequency hash: originals counted
QUERY_TERMS = 20  # terms of a new item used to look up candidates
QUERY_NAMES = 5  # and the terms of its most frequent names
TERM_FANOUT = 50  # latest items kept and read per term: bounds lookups at any index size
STORY_CANDIDATES = 12  # candidates scored in full
CENTROID_TERMS = 80  # terms kept in a story's centroid (of two reports or more)
STORY_NAMES = 100  # names and figures kept per story (its first reports' first)
STORY_FIGURES = 60
MIN_SHARED_TERMS = 2


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What an item leaves in the index besides its metadata."""

    signature: np.ndarray  # MinHash of its word 3-grams
    shingles: int  # how many distinct 3-grams
    buckets: list[str]  # LSH bucket per band
    counts: dict[str, float]  # term counts (document frequencies count each term once)
    vector: str  # TF-IDF vector as stored: JSON, 4 decimals
    query: str  # its heaviest terms, newline-joined: where it is posted


@dataclass(frozen=True, slots=True)
class Known:
    """A look that found the item placed already (SEEN) or its URL an earlier item's
    (SAME_ITEM): nothing to decide."""

    placement: Placement
    state: Any = None  # what the store needs to record it


@dataclass(frozen=True, slots=True)
class Candidates:
    """A look's candidates for a decision, and the article's vector as the index weighs it."""

    near: list[NearCandidate]  # the members of its LSH buckets
    found: list[Found]  # same-story candidates
    stories: list[StorySummary]  # their stories
    vector: str  # as stored: JSON, 4 decimals
    query: list[str]  # its query terms, sorted
    state: Any = None  # what the store needs to record the decision (its check)


Look = Known | Candidates


@dataclass(frozen=True, slots=True)
class Decision:
    """An item's placement, decided and not yet recorded."""

    item: Item
    article: Article
    analysis: Analysis
    placement: Placement
    now: float  # when it was placed (its entry's seen_at)
    look: Look
    fingerprint: Fingerprint | None = None  # None: a known item
    report: Report | None = None

    @property
    def time(self) -> float:
        """The story tier's clock for this item: its report's time (when it was placed, for
        an item known already, which is neither compared nor indexed)."""
        return self.report.time if self.report else self.now


class PlacementStore(Protocol):
    """Where the index reads candidates and records placements."""

    attempts: int  # decisions of one item, the last one recorded unchecked

    def look(self, item_id: str, analysis: Analysis, signature: np.ndarray, report: Report) -> Look:
        """Whether the item is known (claiming its URL if not), else its candidates: those
        around the report's time (stories within a window either side, copies within the
        generations nearest it)."""
        ...

    def record(self, decision: Decision, *, checked: bool) -> bool:
        """Write what the decision leaves in the index; False (nothing written) when
        `checked` and an original that the look may have missed was recorded meanwhile."""
        ...


def known_placement(
    client: redis.Redis, keys: Keys, item_id: str, seen: list, claimed: list
) -> Placement | None:
    """SEEN (the item is in the index already) or SAME_ITEM (its canonical URL is an
    earlier item's), from a look's replies: the entry's story, original and outcome, and the
    URL claim (SET NX, GET; none without a URL); None for neither."""
    story, original, outcome = seen
    if story:
        return Placement(
            outcome=Outcome.SEEN,
            story_id=story,
            duplicate_of=original or None,
            first_outcome=Outcome(outcome),
        )
    first = claimed[1] if claimed else None
    if first and first != item_id:
        story = client.hget(keys.entry(first), "story")
        if story:
            return Placement(
                outcome=Outcome.SAME_ITEM, story_id=story, duplicate_of=first, similarity=1.0
            )
    return None


def generations(when: float, window: int) -> list[int]:
    """The two generations (a window long each) of document frequencies and LSH buckets read
    for a report at `when` (its report time): its own and the nearer neighbour, the one
    before in the first half of its own, else the one after. So a lookup sees at least half
    a window either side of the report, whatever order reports come in (an archive's newest
    first, a backlog), at two lookups per question. A report is counted and bucketed in its
    own generation; the keys expire two windows after (wall clock)."""
    own = int(when // window)
    return [own - 1, own] if when % window < window / 2 else [own, own + 1]


def entry_fields(decision: Decision) -> dict[str, str | float | int]:
    """The fields of an item's entry hash (Keys.entry)."""
    item, analysis, placement = decision.item, decision.analysis, decision.placement
    fingerprint, report, now = decision.fingerprint, decision.report, decision.now
    entry: dict[str, str | float | int] = {
        "story": placement.story_id,
        "outcome": str(placement.outcome),
        "duplicate_of": placement.duplicate_of or "",
        "source": item.source,
        "wires": ",".join(sorted(analysis.wires)),
        "url": analysis.url,
        "title": analysis.title,
        "published": _iso(item.published or decision.article.published),
        "time": decision.time,
        "seen_at": now,
    }
    if fingerprint is not None and report is not None:
        entry["minhash"] = encode_signature(fingerprint.signature)
        entry["shingles"] = fingerprint.shingles
        entry["terms"] = fingerprint.vector
        entry["title_terms"] = " ".join(sorted(report.title))
    return entry


def summary_update(decision: Decision) -> dict[str, Any]:
    """The story summary update's arguments of record.lua and story.lua (summary.lua):
    vector, time, names, figures and what is kept of them; a vector of "" updates
    nothing (a known item)."""
    update: dict[str, Any] = {
        "centroid_size": CENTROID_TERMS,
        "names_kept": STORY_NAMES,
        "figures_kept": STORY_FIGURES,
    }
    fingerprint, report = decision.fingerprint, decision.report
    if fingerprint is not None and report is not None:
        update |= {
            "vector": fingerprint.vector,
            "time": report.time,
            "names": "|".join(sorted(report.names)),
            "figures": "|".join(sorted(report.figures)),
        }
    return update


def _iso(when: datetime | None) -> str:
    return when.isoformat() if when else ""
