"""The dedup index in Redis: places each item as seen / same item / near-duplicate /
same story / new story (DESIGN §4.4). (Alert claims live with publishing: monitor.delivery.queue.)

Bounded in time and size: an item's own keys expire one window after it was placed; LSH
buckets and document frequencies are kept per generation (a window long) and expire a
window after their generation ends; each term keeps only its latest TERM_FANOUT postings.
So memory follows the window, not history. Candidate lookup costs the same at any index
size: LSH buckets for near-duplicates, the postings of an item's heaviest terms for stories.

The decision is made here, the same everywhere; the reads and writes are a store's
(dedup/store.py: one server, where deciding an item is four round trips of plain reads and
recording it one script, or a Redis Cluster). Both read alike (dedup/reads.py) and compute
the candidates in the daemon (dedup/gather.py), not on Redis's one thread.
"""

from __future__ import annotations

import time
from datetime import datetime

import numpy as np
import redis
import structlog

from monitor.config import Settings
from monitor.dedup.analysis import Analysis, analyse
from monitor.dedup.decide import closest_story, near_duplicate
from monitor.dedup.fingerprint import band_buckets, minhash
from monitor.dedup.server import ServerStore
from monitor.dedup.signals import Report, StoryModel, title_terms
from monitor.dedup.spread import SpreadStore
from monitor.dedup.store import (
    DOCUMENTS,
    MIN_SHARED_TERMS,
    QUERY_NAMES,
    QUERY_TERMS,
    STORY_CANDIDATES,
    TERM_FANOUT,
    Candidates,
    Decision,
    Fingerprint,
    Known,
    PlacementStore,
)
from monitor.model import Article, Item, Outcome, Placement, Source, stable_id
from monitor.store.connection import is_cluster
from monitor.store.keys import Keys

__all__ = [
    "DOCUMENTS",
    "MIN_SHARED_TERMS",
    "QUERY_TERMS",
    "STORY_CANDIDATES",
    "TERM_FANOUT",
    "DedupIndex",
]

log = structlog.get_logger(__name__)


class DedupIndex:
    """Places items in the index its store keeps: `store`, or the one for `client` (one
    server, or a cluster: monitor.store.connection.is_cluster)."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        window: int,
        near_threshold: float,
        story_threshold: float,
        model: StoryModel | None = None,
        store: PlacementStore | None = None,
    ) -> None:
        self.client = client
        self.keys = keys
        self.window = max(window, 1)  # also the length of a generation (store.generations)
        self.near_threshold = near_threshold
        self.story_threshold = story_threshold
        self.model = model or StoryModel.load()
        kind = SpreadStore if is_cluster(client) else ServerStore
        self.store: PlacementStore = store or kind(client, keys, window=self.window)

    @classmethod
    def from_settings(cls, client: redis.Redis, keys: Keys, settings: Settings) -> DedupIndex:
        return cls(
            client,
            keys,
            window=settings.window_seconds,
            near_threshold=settings.near_duplicate_threshold,
            story_threshold=settings.story_threshold,
        )

    def place(
        self,
        item: Item,
        article: Article,
        now: float | None = None,
        analysis: Analysis | None = None,
    ) -> Placement:
        """Decide where the item belongs and record it. Idempotent for the same item.
        `analysis`: the article's, when the caller has it (else it is made here).

        Deciding and recording are one atomic step: the recording checks that no other
        original that could be a candidate was recorded since the decision read the index,
        and if one was, the item is decided again (at most the store's `attempts` times,
        the last one unchecked).

        `now` is when the item is placed; what the index compares, windows and expires by
        is the report's own time (`Report.time`), so a replayed archive, a backlog and live
        polling of the same reports find the same candidates."""
        now = time.time() if now is None else now
        analysis = analysis or analyse(item, article)
        signature = minhash(analysis.shingles)
        report = self._report(analysis, now, item.time or article.published)
        attempts = self.store.attempts
        for attempt in range(1, attempts + 1):
            decision = self._decision(item, article, analysis, signature, report, now)
            if self.store.record(decision, checked=attempt < attempts):
                return decision.placement
            log.debug("placement_retried", item=item.id, attempt=attempt)
        raise AssertionError("unreachable: the last attempt records unchecked")

    def _decision(
        self,
        item: Item,
        article: Article,
        analysis: Analysis,
        signature: np.ndarray,
        report: Report,
        now: float,
    ) -> Decision:
        """The store's look, and the placement decided from it (not recorded yet)."""
        look = self.store.look(item.id, analysis, signature, report)
        if isinstance(look, Known):
            return Decision(item, article, analysis, look.placement, now, look)
        shingles = len(analysis.shingles)
        placement = self._placement_from(item, signature, shingles, report, look)
        fingerprint = Fingerprint(
            signature,
            shingles,
            band_buckets(signature),
            analysis.counts,
            look.vector,
            "\n".join(look.query),
        )
        return Decision(item, article, analysis, placement, now, look, fingerprint, report)

    def _placement_from(
        self,
        item: Item,
        signature: np.ndarray,
        shingles: int,
        report: Report,
        candidates: Candidates,
    ) -> Placement:
        """The placement, from the candidates' fingerprints (decide.py)."""
        copy = near_duplicate(signature, shingles, candidates.near, self.near_threshold)
        if copy:
            return copy
        found, stories = candidates.found, candidates.stories
        if best := closest_story(self.model, self.story_threshold, report, found, stories):
            return Placement(
                outcome=Outcome.SAME_STORY, story_id=best[1], similarity=round(best[0], 6)
            )
        return Placement(outcome=Outcome.NEW_STORY, story_id=stable_id("story", item.key))

    @staticmethod
    def _report(analysis: Analysis, now: float, when: datetime | None) -> Report:
        """What the decision knows of the report. Its time is `when` (the item's report
        time, else the page's date), never later than `now`, the moment it is placed (a
        date in the future is a wrong clock); undated, it is `now`. A report dated 1970 is
        compared with its own window only: no date moves another report's clock."""
        return Report(
            time=min(when.timestamp(), now) if when else now,
            title=frozenset(title_terms(analysis.title_words)),
            names=frozenset(analysis.names),
            top_names=tuple(analysis.names[:QUERY_NAMES]),
            figures=frozenset(analysis.figures),
            wires=frozenset(analysis.wires),
        )

    def story(self, story_id: str, limit: int = 50) -> tuple[int, list[Source]]:
        """The story's size and its members, oldest first (at most `limit`): two round
        trips."""
        pipe = self.client.pipeline(transaction=False)
        pipe.zcard(self.keys.story(story_id))
        pipe.zrange(self.keys.story(story_id), 0, limit - 1)
        size, ids = pipe.execute()
        for iid in ids:
            pipe.hmget(self.keys.entry(iid), "source", "url", "title", "published", "wires")
        sources = []
        for iid, (source, url, title, published, wires) in zip(ids, pipe.execute(), strict=True):
            if url:
                agencies = tuple(w for w in (wires or "").split(",") if w)
                sources.append(
                    Source(iid, source or "", url, title or "", published or "", agencies)
                )
        return int(size), sources

    def originals(self) -> int:
        """How many originals (new stories and same-story reports) the index holds: the
        counts of every generation of document frequencies still kept. Generations go by
        report time (an archive replayed fills old ones); each lives two windows after it
        was last written, so there are few."""
        names = list(self.client.scan_iter(match=self.keys.df_pattern, count=1000))
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.hget(name, DOCUMENTS)
        return sum(int(n or 0) for n in pipe.execute()) if names else 0
