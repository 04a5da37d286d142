"""The dedup index on a Redis Cluster: the same decisions as on one server (DedupIndex),
with the index spread over the masters.

On one server a decision is one script that reads whatever keys it needs. A cluster runs a
script on one slot only, and the index's keys — items, LSH bucket groups, term postings,
story summaries — hash everywhere. So the reads that near_candidates.lua and
story_candidates.lua make on the server are pipelined here, one round trip per step (each
step needs the previous one's answer), and dedup/gather.py computes from the replies what
those scripts compute.

Atomic placement across daemons (DESIGN §4.5) without one script: a placement starts with
a snapshot (dedup/snapshot.lua) and commits (dedup/commit.lua) in the slot of the document
frequencies, `{df}`. The commit fails when another original sharing a query term committed
since the snapshot or was being written at that time — the decision may not have seen it —
and the report is decided again, as record.lua's check does on one server. Only then are
its keys written (each step idempotent: a crash in between writes the same again on the
next delivery), its entry last, and the placement leaves the log's in-flight set.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from monitor.dedup import gather
from monitor.dedup.analysis import Analysis
from monitor.dedup.fingerprint import PRIOR_DOCUMENTS, VECTOR_TERMS, band_buckets, prior_df
from monitor.dedup.index import (
    DOCUMENTS,
    MIN_SHARED_TERMS,
    QUERY_TERMS,
    STORY_CANDIDATES,
    TERM_FANOUT,
    DedupIndex,
    Fingerprint,
    entry_fields,
    summary_args,
)
from monitor.dedup.signals import Report, name_terms
from monitor.model import Article, Item, Outcome, Placement, stable_id
from monitor.store.keys import LSH_GROUP, Keys
from monitor.store.scripts import Lua, pipelined, script

FLIGHT_MS = 5_000  # a placement not written by then was abandoned (its daemon died)
LOG_MS = 30_000  # how long the placement log keeps an entry: longer than any decision
NEEDS_FOUNDER = -2  # story.lua: the summary needs the vector of the story's one member


class SpreadIndex(DedupIndex):
    """DedupIndex for a cluster client (monitor.store.connection.is_cluster)."""

    # A decision here takes a few round trips, not one: more rewrites of one story may
    # commit meanwhile (each costs a look again, a few ms) before the last, unchecked try.
    attempts = 20

    def __init__(self, client: Any, keys: Keys, **options: Any) -> None:
        super().__init__(client, keys, **options)
        self._snapshot = Lua(client, script("snapshot", "monitor.dedup"))
        self._commit = Lua(client, script("commit", "monitor.dedup"))
        self._story = Lua(client, script("story", "monitor.dedup"))
        self._bucket = Lua(client, script("bucket", "monitor.dedup"))
        self._post = Lua(client, script("post", "monitor.dedup"))
        self._scripts = (self._snapshot, self._story, self._bucket, self._post)

    def _place(
        self,
        item: Item,
        article: Article,
        analysis: Analysis,
        signature: np.ndarray,
        report: Report,
        now: float,
        *,
        checked: bool,
    ) -> Placement | None:
        keys, item_id = self.keys, item.id
        url_key = keys.canonical(stable_id("url", analysis.url))
        counts = analysis.counts
        generations = self._generations(now)

        def known(pipe: Any) -> None:
            pipe.hmget(keys.entry(item_id), "story", "duplicate_of", "outcome")
            if analysis.url:  # claim the URL, or learn who has it
                pipe.set(url_key, item_id, nx=True, ex=self.window)
                pipe.get(url_key)
            self._snapshot.queue(
                pipe,
                [*(keys.df(g) for g in generations), keys.placements, keys.placing],
                ["\n".join(counts)],
            )

        deadline = time.monotonic() + FLIGHT_MS / 1000
        while True:
            seen, *claimed, snapshot = pipelined(self.client, known, self._scripts)
            last, flying, documents, frequencies, taken_at = snapshot
            if placed := self._known(item_id, seen, claimed):
                if placed.outcome is Outcome.SAME_ITEM:
                    self._write(item, article, analysis, placed, now)
                if own := [
                    p for p, other, _ in zip(*[iter(flying)] * 3, strict=True) if other == item_id
                ]:
                    self.client.hdel(keys.placing, *own)  # written; a failure stopped the rest
                return placed
            vector = gather.vector(
                counts,
                [prior_df(t) for t in counts],
                [int(n) for n in frequencies.split("\n")] if counts else [],
                int(documents),
                prior_documents=PRIOR_DOCUMENTS,
                keep=VECTOR_TERMS,
                query=QUERY_TERMS,
                names=name_terms(report.top_names, counts),
            )
            # Placements being written that could be candidates: wait for them (a few ms)
            # and look again, rather than read without them and fail at the commit.
            query = set(vector.query)
            writing = [
                placing
                for placing, other, terms in zip(*[iter(flying)] * 3, strict=True)
                if other != item_id  # its own earlier attempt, cut short: not waited for
                and len(query.intersection(terms.split("\n"))) >= MIN_SHARED_TERMS
            ]
            if not writing or time.monotonic() > deadline or not self._written(writing, deadline):
                break  # (the deadline bounds the waiting however many placements come and go)
        buckets = band_buckets(signature)
        near, found, stories, founders = self._gather(item_id, buckets, vector, now)
        shingles = len(analysis.shingles)
        placement = self._decide(item, signature, shingles, report, near, found, stories)
        fingerprint = Fingerprint(
            signature, shingles, buckets, counts, vector.stored, "\n".join(vector.query)
        )
        placing = None
        if placement.outcome.is_original:
            current = int(now // self.window)
            placing = self._commit(
                keys=[keys.df(current), keys.placements, keys.placing],
                args=[
                    last,
                    taken_at,
                    ",".join(flying[0::3]),
                    item_id,
                    fingerprint.query,
                    "\n".join([DOCUMENTS, *counts]),
                    2 * self.window,
                    FLIGHT_MS,
                    "1" if checked else "0",
                    LOG_MS,
                    MIN_SHARED_TERMS,
                ],
            )
            if placing == -1:
                return None  # another original came meanwhile: decide again
        founder = founders.get(placement.story_id, "")
        self._write(
            item,
            article,
            analysis,
            placement,
            now,
            fingerprint,
            report,
            indexed=placing is not None,
            founder=founder,
        )
        if placing is not None:
            self.client.hdel(keys.placing, placing)
        return placement

    def _written(self, placements: list[str], deadline: float) -> bool:
        """Wait until these placements are written (they leave the in-flight hash); False
        if `deadline` came first."""
        pause = 0.001
        while any(self.client.hmget(self.keys.placing, placements)):
            if time.monotonic() > deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.05)  # the {df} slot is busy: do not hammer it
        return True

    def _gather(
        self, item_id: str, buckets: list[str], vector: gather.Vector, now: float
    ) -> tuple[list, list, list, dict[str, str]]:
        """What near_candidates.lua and story_candidates.lua return, in three round trips
        (buckets and postings; the entries found there; their stories' summaries), and the
        vectors of the candidate stories of one report (their one member's)."""
        keys, generations = self.keys, self._generations(now)
        fields = gather.bucket_fields(buckets, LSH_GROUP)

        def lookups(pipe: Any) -> None:
            for suffix, field in fields:
                for generation in generations:
                    pipe.hget(keys.lsh(generation) + suffix, field)
            for term in vector.query:
                pipe.zrevrangebyscore(
                    keys.term(term), "+inf", now - self.window, start=0, num=TERM_FANOUT
                )

        replies = pipelined(self.client, lookups, ())
        split = len(fields) * len(generations)
        near_ids = gather.bucket_ids(replies[:split], item_id)
        candidates = gather.ranked(
            vector.query,
            replies[split:],
            vector.weights,
            own=item_id,
            min_shared=MIN_SHARED_TERMS,
            limit=STORY_CANDIDATES,
        )

        def entries(pipe: Any) -> None:
            for cid in near_ids:
                pipe.hmget(keys.entry(cid), "minhash", "story", "duplicate_of", "shingles")
            for cid in candidates:
                pipe.hmget(keys.entry(cid), "terms", "story", "title_terms", "wires")

        replies = pipelined(self.client, entries, ()) if near_ids or candidates else []
        near = [[cid, *found] for cid, found in zip(near_ids, replies, strict=False)]
        read = replies[len(near_ids) :]
        named = list(dict.fromkeys(story for terms, story, *_ in read if terms and story))

        def summaries(pipe: Any) -> None:
            for story in named:
                pipe.hmget(
                    keys.story_summary(story),
                    "size",
                    "oldest",
                    "newest",
                    "centroid",
                    "names",
                    "figures",
                )

        replies = pipelined(self.client, summaries, ()) if named else []
        summary = dict(zip(named, replies, strict=True))
        found, stories = gather.scored(vector.weights, candidates, read, summary)
        founders = {
            story: terms
            for terms, story, *_ in read
            if terms and story in summary and not summary[story][3]
        }
        return near, found, stories, founders

    def _write(
        self,
        item: Item,
        article: Article,
        analysis: Analysis,
        placement: Placement,
        now: float,
        fingerprint: Fingerprint | None = None,
        report: Report | None = None,
        *,
        indexed: bool = False,
        founder: str = "",
    ) -> None:
        """What record.lua writes in one step, in three: the story (sorted set and summary)
        and, for an original, its LSH buckets and postings; then its entry."""
        keys, story = self.keys, placement.story_id
        story_keys = [keys.story(story), keys.story_summary(story)]
        story_args = [item.id, now, self.window, *summary_args(fingerprint, report)]

        def index(pipe: Any) -> None:
            self._story.queue(pipe, story_keys, [*story_args, founder])
            if not (indexed and fingerprint):
                return
            current, ttl = int(now // self.window), 2 * self.window
            for suffix, field in gather.bucket_fields(fingerprint.buckets, LSH_GROUP):
                self._bucket.queue(pipe, [keys.lsh(current) + suffix], [field, item.id, ttl])
            for term in fingerprint.query.split("\n") if fingerprint.query else ():
                self._post.queue(pipe, [keys.term(term)], [item.id, now, TERM_FANOUT, self.window])

        joined, *_ = pipelined(self.client, index, self._scripts)
        if joined == NEEDS_FOUNDER:  # "{}": the member expired, the report starts the centroid
            self._story(keys=story_keys, args=[*story_args, self._founder(story, item.id) or "{}"])
        entry = entry_fields(item, article, analysis, placement, now, fingerprint, report)
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(keys.entry(item.id), mapping=entry)
        pipe.expire(keys.entry(item.id), self.window)
        pipe.execute()

    def _founder(self, story: str, item_id: str) -> str:
        """The vector of the story's first member that is not `item_id` ("" if gone)."""
        for member in self.client.zrange(self.keys.story(story), 0, 1):
            if member != item_id:
                terms = self.client.hget(self.keys.entry(member), "terms")
                if terms:
                    return str(terms)
        return ""
