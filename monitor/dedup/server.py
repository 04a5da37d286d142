"""The dedup index's store on one Redis server: a look is four round trips of plain reads
(dedup/reads.py), a record is one script (record.lua), whose check makes deciding and
recording one atomic step."""

from __future__ import annotations

from typing import Any

import numpy as np
import redis

from monitor.dedup import reads
from monitor.dedup.activity import activity_args, counts
from monitor.dedup.analysis import Analysis
from monitor.dedup.calls import LookupsCall, RecordCall
from monitor.dedup.fingerprint import band_buckets
from monitor.dedup.signals import Report
from monitor.dedup.store import (
    DOCUMENTS,
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


class ServerStore:
    """PlacementStore on one server (or a Sentinel-watched pair)."""

    attempts = 5  # decisions of one item when other daemons keep recording rewrites of it

    def __init__(self, client: redis.Redis, keys: Keys, *, window: int) -> None:
        self.client = client
        self.keys = keys
        self.window = window
        self._record = Lua(client, RecordCall)
        self._lookups = Lua(client, LookupsCall)

    def look(self, item_id: str, analysis: Analysis, signature: np.ndarray, report: Report) -> Look:
        """Known already? URL claimed? The terms' document frequencies: one round trip. Then
        the candidates, in three (dedup/reads.py). Plain commands only: the arithmetic
        (weights, ranking, cosines) is the daemon's, not Redis's one thread."""
        keys, url, counts = self.keys, analysis.url, analysis.counts
        url_key = keys.canonical(stable_id("url", url))
        window = generations(report.time, self.window)
        terms = list(counts)

        def ask(pipe: Any) -> None:
            pipe.hmget(keys.entry(item_id), "story", "duplicate_of", "outcome")
            if url:  # claim the URL, or learn who has it (SET NX GET would need Redis 7)
                pipe.set(url_key, item_id, nx=True, ex=self.window)
                pipe.get(url_key)
            reads.ask_frequencies(pipe, keys, window, terms)

        seen, *claimed = pipelined(self.client, ask, ())
        claimed, counted = claimed[: len(claimed) - len(window)], claimed[-len(window) :]
        if known := known_placement(self.client, keys, item_id, seen, claimed):
            return Known(known)
        documents, df = reads.frequencies(counted, len(terms))
        vector = reads.vector(counts, df, documents, report)
        got = reads.candidates(
            self.client,
            keys,
            window=self.window,
            item_id=item_id,
            buckets=band_buckets(signature),
            vector=vector,
            when=report.time,
            generations=window,
            lookups=self._lookups,
        )
        frequency = dict(zip(terms, df, strict=True))
        return Candidates(
            got.near,
            got.found,
            got.stories,
            vector.stored,
            vector.query,
            state=[frequency[t] for t in vector.query],
        )

    def record(self, decision: Decision, *, checked: bool) -> bool:
        """record.lua: the item's entry, its story's summary and (originals) its postings;
        checked (an original): unless another original with one of its query terms was
        recorded since the look."""
        placement, fingerprint = decision.placement, decision.fingerprint
        if placement.outcome is Outcome.SEEN:
            return True
        keys, item_id, when = self.keys, decision.item.id, decision.time
        story = placement.story_id
        options: dict[str, Any] = summary_update(decision)
        look = decision.look
        if checked and isinstance(look, Candidates) and placement.outcome.is_original:
            check = "\n".join(f"{t}\t{n}" for t, n in zip(look.query, look.state, strict=True) if t)
            if check:
                window = generations(when, self.window)
                options |= {
                    "check_keys": ",".join(keys.df(g) for g in window),
                    "check_terms": check,
                }
        # Only originals are indexed: a copy of a copy is found through the original.
        if fingerprint and placement.outcome.is_original:
            own, ttl = int(when // self.window), 2 * self.window  # until its last lookup
            options |= {
                "df": keys.df(own),
                "df_ttl": ttl,
                "counted": "\n".join([DOCUMENTS, *fingerprint.counts]),
                "lsh": keys.lsh(own),
                "lsh_ttl": ttl,
                "buckets": ",".join(fingerprint.buckets),
                "term_prefix": keys.term(""),
                "query": fingerprint.query,
                "fanout": TERM_FANOUT,
                "group": LSH_GROUP,
            }
        if counts(placement.outcome):
            options |= activity_args(decision.item.source, self.window)
            options |= {"story_id": story, "day_prefix": keys.activity_day("")}
        call = RecordCall(
            entry=keys.entry(item_id),
            story=keys.story(story),
            summary=keys.story_summary(story),
            activity=keys.story_activity(story),
            active=keys.active_stories,
            id=item_id,
            when=when,
            window=self.window,
            fields=[x for kv in entry_fields(decision).items() for x in kv],
            **options,
        )
        return self._record(call).written
