"""The dedup index's store on one Redis server: a look is one round trip (the item's entry,
its URL claim, near_candidates.lua and story_candidates.lua pipelined), a record is one
script (record.lua), whose check makes deciding and recording one atomic step."""

from __future__ import annotations

from typing import Any

import numpy as np
import redis

from monitor.dedup.activity import activity_args, counts
from monitor.dedup.analysis import Analysis
from monitor.dedup.calls import NearCandidatesCall, RecordCall, StoryCandidatesCall
from monitor.dedup.fingerprint import PRIOR_DOCUMENTS, VECTOR_TERMS, band_buckets, prior_df
from monitor.dedup.signals import Report, name_terms
from monitor.dedup.store import (
    DOCUMENTS,
    MIN_SHARED_TERMS,
    QUERY_TERMS,
    STORY_CANDIDATES,
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
        self._near_candidates = Lua(client, NearCandidatesCall)
        self._story_candidates = Lua(client, StoryCandidatesCall)
        self._record = Lua(client, RecordCall)

    def look(self, item_id: str, analysis: Analysis, signature: np.ndarray, report: Report) -> Look:
        """One round trip asks every question: known already? URL claimed? near-duplicate
        candidates? the candidate stories (and the article's TF-IDF vector)? The scripts go
        by their SHA: a pipeline calling them as Script objects would first ask SCRIPT
        EXISTS, a round trip more per item. Loaded again after NOSCRIPT (a restart): the URL
        claim is idempotent, so asking twice is safe."""
        keys, url = self.keys, analysis.url
        url_key = keys.canonical(stable_id("url", url))
        window = generations(report.time, self.window)
        near = NearCandidatesCall(
            id=item_id,
            entry_prefix=keys.entry(""),
            buckets=",".join(band_buckets(signature)),
            lsh_prefixes=",".join(keys.lsh(g) for g in window),
            group=LSH_GROUP,
        )
        before, after = keys.summary_affixes
        stories = StoryCandidatesCall(
            frequencies=[keys.df(g) for g in window],
            counts="\n".join(f"{t}\t{n}\t{prior_df(t)}" for t, n in analysis.counts.items()),
            prior_documents=PRIOR_DOCUMENTS,
            keep=VECTOR_TERMS,
            query=QUERY_TERMS,
            since=report.time - self.window,
            until=report.time + self.window,
            fanout=TERM_FANOUT,
            id=item_id,
            limit=STORY_CANDIDATES,
            min_shared=MIN_SHARED_TERMS,
            entry_prefix=keys.entry(""),
            term_prefix=keys.term(""),
            summary_prefix=before,
            names="\n".join(name_terms(report.top_names, analysis.counts)),
            summary_suffix=after,
        )

        def ask(pipe: Any) -> None:
            pipe.hmget(keys.entry(item_id), "story", "duplicate_of", "outcome")
            if url:  # claim the URL, or learn who has it (SET NX GET would need Redis 7)
                pipe.set(url_key, item_id, nx=True, ex=self.window)
                pipe.get(url_key)
            self._near_candidates.queue(pipe, near)
            self._story_candidates.queue(pipe, stories)

        scripts = (self._near_candidates, self._story_candidates)
        seen, *claimed, near_reply, stories_reply = pipelined(self.client, ask, scripts)
        if known := known_placement(self.client, keys, item_id, seen, claimed):
            return Known(known)
        closest = stories.parse(stories_reply)
        return Candidates(
            near.parse(near_reply),
            closest.found,
            closest.stories,
            closest.vector,
            closest.query,
            state=closest.query_df,
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
