"""The dedup index's store on a Redis Cluster: the same decisions as on one server
(dedup/server.py), with the index spread over the masters.

The look reads what it reads on one server (dedup/reads.py: plain commands, pipelined);
only the document frequencies come from a snapshot script, with the placement log's state.
A cluster runs a script on one slot only, and the index's keys — items, LSH bucket groups,
term postings, story summaries — hash everywhere, so the writes are scripts per slot.

Atomic placement across daemons (DESIGN §4.5) without one script: a placement starts with
a snapshot (dedup/snapshot.lua) and commits (dedup/commit.lua) in the slot of the document
frequencies, `{df}`. The commit fails when another original sharing a query term committed
since the snapshot or was being written at that time — the decision may not have seen it —
and the report is decided again, as record.lua's check does on one server. Only then are
its keys written (each step idempotent: a crash in between writes the same again on the
next delivery), its entry last, and the placement leaves the log's in-flight set.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.dedup import gather, reads
from monitor.dedup.activity import Activity, activity_args, counts
from monitor.dedup.analysis import Analysis
from monitor.dedup.calls import (
    BucketCall,
    CommitCall,
    PostCall,
    Snapshot,
    SnapshotCall,
    StoryCall,
)
from monitor.dedup.fingerprint import band_buckets
from monitor.dedup.signals import Report
from monitor.dedup.store import (
    DOCUMENTS,
    MIN_SHARED_TERMS,
    TERM_FANOUT,
    Candidates,
    Decision,
    Known,
    Look,
    entry_fields,
    generations,
    known_placement,
    summary_update,
)
from monitor.model import Outcome, stable_id
from monitor.store.keys import LSH_GROUP, Keys
from monitor.store.scripts import Lua, pipelined

FLIGHT_MS = 5_000  # a placement not written by then was abandoned (its daemon died)
LOG_MS = 30_000  # how long the placement log keeps an entry: longer than any decision


@dataclass(frozen=True, slots=True)
class Looked:
    """What a cluster's record needs from its look: the snapshot (and the founders)."""

    snapshot: Snapshot
    founders: dict[str, str]


class SpreadStore:
    """PlacementStore on a cluster client (monitor.store.connection.is_cluster)."""

    # A decision here takes a few round trips, not one: more rewrites of one story may
    # commit meanwhile (each costs a look again, a few ms) before the last, unchecked try.
    attempts = 20

    def __init__(self, client: Any, keys: Keys, *, window: int) -> None:
        self.client = client
        self.keys = keys
        self.window = window
        self._snapshot = Lua(client, SnapshotCall)
        self._commit = Lua(client, CommitCall)
        self._story = Lua(client, StoryCall)
        self._bucket = Lua(client, BucketCall)
        self._post = Lua(client, PostCall)
        self._activity = Activity(client, keys, window=window)
        self._scripts = (self._snapshot, self._story, self._bucket, self._post)

    def look(self, item_id: str, analysis: Analysis, signature: np.ndarray, report: Report) -> Look:
        """A snapshot (and the entry and URL claim), then the candidates in three round
        trips. Placements being written that could be candidates are waited for (a few ms)
        and the snapshot taken again, rather than read without them and fail at the commit;
        FLIGHT_MS bounds the waiting however many placements come and go."""
        counts = analysis.counts
        deadline = time.monotonic() + FLIGHT_MS / 1000
        while True:
            seen, claimed, snapshot = self._snapshot_of(item_id, analysis, report.time)
            if known := known_placement(self.client, self.keys, item_id, seen, claimed):
                return Known(known, Looked(snapshot, {}))
            vector = reads.vector(counts, snapshot.frequencies, snapshot.documents, report)
            query = set(vector.query)
            writing = [
                flight.placing
                for flight in snapshot.flying
                if flight.item != item_id  # its own earlier attempt, cut short: not waited for
                and len(query.intersection(flight.terms)) >= MIN_SHARED_TERMS
            ]
            if not writing or time.monotonic() > deadline or not self._written(writing, deadline):
                break
        got = reads.candidates(
            self.client,
            self.keys,
            window=self.window,
            item_id=item_id,
            buckets=band_buckets(signature),
            vector=vector,
            when=report.time,
            generations=generations(report.time, self.window),
        )
        looked = Looked(snapshot, got.founders)
        return Candidates(got.near, got.found, got.stories, vector.stored, vector.query, looked)

    def record(self, decision: Decision, *, checked: bool) -> bool:
        """An original commits (commit.lua: False if another original came meanwhile), then
        its keys are written, its entry last, and it leaves the in-flight hash. A known item
        only clears its own earlier attempts from that hash (after writing, if the same
        item)."""
        keys, item_id, placement = self.keys, decision.item.id, decision.placement
        looked: Looked = decision.look.state
        if isinstance(decision.look, Known):
            if placement.outcome is Outcome.SAME_ITEM:
                self._write(decision)
            flying = looked.snapshot.flying
            if own := [flight.placing for flight in flying if flight.item == item_id]:
                self.client.hdel(keys.placing, *own)  # written; a failure stopped the rest
            return True
        fingerprint = decision.fingerprint
        assert fingerprint is not None
        placing = None
        if placement.outcome.is_original:
            snapshot, generation = looked.snapshot, int(decision.time // self.window)
            placing = self._commit(
                CommitCall(
                    df=keys.df(generation),
                    log=keys.placements,
                    flight=keys.placing,
                    last=snapshot.last,
                    taken_at=snapshot.taken_at,
                    flying=",".join(flight.placing for flight in snapshot.flying),
                    id=item_id,
                    query=fingerprint.query,
                    counted="\n".join([DOCUMENTS, *fingerprint.counts]),
                    df_ttl=2 * self.window,
                    flight_ms=FLIGHT_MS,
                    check="1" if checked else "0",
                    log_ms=LOG_MS,
                    min_shared=MIN_SHARED_TERMS,
                )
            ).placing
            if placing is None:
                return False  # another original came meanwhile: decide again
        founder = looked.founders.get(placement.story_id, "")
        self._write(decision, indexed=placing is not None, founder=founder)
        if placing is not None:
            self.client.hdel(keys.placing, placing)
        return True

    def _snapshot_of(
        self, item_id: str, analysis: Analysis, when: float
    ) -> tuple[list, list, Snapshot]:
        """The item's entry, its URL claim (SET NX, GET) and a snapshot, in one round trip."""
        keys = self.keys
        url_key = keys.canonical(stable_id("url", analysis.url))
        earlier, later = generations(when, self.window)
        call = SnapshotCall(
            previous=keys.df(earlier),
            current=keys.df(later),
            log=keys.placements,
            flight=keys.placing,
            terms="\n".join(analysis.counts),
        )

        def ask(pipe: Any) -> None:
            pipe.hmget(keys.entry(item_id), "story", "duplicate_of", "outcome")
            if analysis.url:  # claim the URL, or learn who has it
                pipe.set(url_key, item_id, nx=True, ex=self.window)
                pipe.get(url_key)
            self._snapshot.queue(pipe, call)

        seen, *claimed, snapshot = pipelined(self.client, ask, self._scripts)
        return seen, claimed, call.parse(snapshot)

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

    def _write(self, decision: Decision, *, indexed: bool = False, founder: str = "") -> None:
        """What record.lua writes in one step, in three: the story (sorted set and summary)
        and, for an original, its LSH buckets and postings; then its entry."""
        keys, item_id, when = self.keys, decision.item.id, decision.time
        story, fingerprint = decision.placement.story_id, decision.fingerprint
        counted = activity_args(decision.item.source, self.window)
        joining = StoryCall(
            story=keys.story(story),
            summary=keys.story_summary(story),
            activity=keys.story_activity(story),
            id=item_id,
            when=when,
            window=self.window,
            founder=founder,
            **summary_update(decision),
            **(counted if counts(decision.placement.outcome) else {}),
        )

        def index(pipe: Any) -> None:
            self._story.queue(pipe, joining)
            if not (indexed and fingerprint):
                return
            own, ttl = int(when // self.window), 2 * self.window
            for suffix, field in gather.bucket_fields(fingerprint.buckets, LSH_GROUP):
                self._bucket.queue(pipe, BucketCall(keys.lsh(own) + suffix, field, item_id, ttl))
            for term in fingerprint.query.split("\n") if fingerprint.query else ():
                self._post.queue(
                    pipe, PostCall(keys.term(term), item_id, when, TERM_FANOUT, self.window)
                )

        joined, *_ = pipelined(self.client, index, self._scripts)
        result = joining.parse(joined)
        if result.needs_founder:  # "{}": the member expired, the report starts
            founder = self._founder(story, item_id) or "{}"  # the centroid
            result = self._story(dataclasses.replace(joining, founder=founder))
        entry = entry_fields(decision)
        pipe = self.client.pipeline(transaction=False)
        if result.counted:  # the stream's activity: its keys are in other slots
            self._activity.count_stream(pipe, story, when, first_of_hour=result.first_of_hour)
        pipe.hset(keys.entry(item_id), mapping=entry)
        pipe.expire(keys.entry(item_id), self.window)
        pipe.execute()

    def _founder(self, story: str, item_id: str) -> str:
        """The vector of the story's first member that is not `item_id` ("" if gone)."""
        for member in self.client.zrange(self.keys.story(story), 0, 1):
            if member != item_id:
                terms = self.client.hget(self.keys.entry(member), "terms")
                if terms:
                    return str(terms)
        return ""
