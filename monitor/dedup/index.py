"""The dedup index in Redis: places each item as seen / same item / near-duplicate /
same story / new story (DESIGN §4.4). (Alert claims live with publishing: monitor.delivery.queue.)

Bounded in time and size: an item's own keys expire one window after it was placed; LSH
buckets and document frequencies are kept per generation (a window long) and expire a
window after their generation ends; each term keeps only its latest TERM_FANOUT postings.
So memory follows the window, not history. Candidate lookup costs the same at any index
size: LSH buckets for near-duplicates, the postings of an item's heaviest terms for stories.
Deciding an item is one round trip; recording it is one script.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import redis
import structlog

from monitor.config import Settings
from monitor.dedup.analysis import Analysis, analyse
from monitor.dedup.decide import closest_story, near_duplicate
from monitor.dedup.fingerprint import (
    PRIOR_DOCUMENTS,
    VECTOR_TERMS,
    band_buckets,
    encode_signature,
    minhash,
    prior_df,
)
from monitor.dedup.signals import (
    Report,
    StoryModel,
    name_terms,
    title_terms,
)
from monitor.model import Article, Item, Outcome, Placement, Source, stable_id
from monitor.store.keys import LSH_GROUP, Keys
from monitor.store.scripts import Lua, pipelined, script

log = structlog.get_logger(__name__)

DOCUMENTS = "#documents"  # field of a generation's frequency hash: originals counted
QUERY_TERMS = 20  # terms of a new item used to look up candidates
QUERY_NAMES = 5  # and the terms of its most frequent names
TERM_FANOUT = 50  # latest items kept and read per term: bounds lookups at any index size
STORY_CANDIDATES = 12  # candidates scored in full
ATTEMPTS = 5  # decisions of one item when other daemons keep recording rewrites of it
CENTROID_TERMS = 80  # terms kept in a story's centroid (of two reports or more)
STORY_NAMES = 100  # names and figures kept per story (its first reports' first)
STORY_FIGURES = 60
MIN_SHARED_TERMS = 2

# The scripts (near_candidates.lua, story_candidates.lua, record.lua: each file's header says
# its KEYS, ARGV and reply) build key names from prefixes (Keys.term(""), Keys.lsh(generation),
# ...) and take terms, buckets and generations as one joined argument each: packing and
# parsing a few hundred separate arguments and replies costs more than the work itself.
_NEAR_CANDIDATES = script("near_candidates", "monitor.dedup")
_CANDIDATES = script("story_candidates", "monitor.dedup")
_RECORD = script("record", "monitor.dedup")


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
class Decision:
    """A placement decided from one round trip's replies, not yet recorded."""

    placement: Placement
    record: tuple[list[str], list[Any]] | None  # its record.lua call (None: nothing to write)
    fingerprint: Fingerprint | None = None  # an article's decision: what it leaves
    stories: frozenset[str] = frozenset()  # the candidate stories it weighed


class DedupIndex:
    attempts = ATTEMPTS

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        window: int,
        near_threshold: float,
        story_threshold: float,
        model: StoryModel | None = None,
    ) -> None:
        self.client = client
        self.keys = keys
        self.window = max(window, 1)  # also the length of a generation (see _generations)
        self.near_threshold = near_threshold
        self.story_threshold = story_threshold
        self._near_candidates = Lua(client, _NEAR_CANDIDATES)
        self._candidates = Lua(client, _CANDIDATES)
        self.model = model or StoryModel.load()
        self._record_lua = Lua(client, _RECORD)

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
        original sharing the item's query terms was recorded since the decision read the
        index, and if one was, the item is decided again (at most `attempts` times)."""
        now = time.time() if now is None else now
        analysis = analysis or analyse(item, article)
        signature = minhash(analysis.shingles)
        report = self._report(analysis, now, item.time or article.published)
        for attempt in range(1, self.attempts + 1):
            placement = self._place(
                item, article, analysis, signature, report, now, checked=attempt < self.attempts
            )
            if placement is not None:
                return placement
            log.debug("placement_retried", item=item.id, attempt=attempt)
        raise AssertionError("unreachable: the last attempt records unchecked")

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
        # Loaded again after NOSCRIPT (a restart): the URL claim is idempotent, so asking
        # twice is safe.
        replies = pipelined(
            self.client,
            lambda pipe: self._ask(pipe, item.id, analysis, signature, report, now),
            (self._near_candidates, self._candidates),
        )
        decision = self._decision(
            item, article, analysis, signature, report, now, replies, checked=checked
        )
        if decision.record is None:
            return decision.placement
        return decision.placement if self._record_lua(*decision.record) != -1 else None

    def _ask(
        self,
        pipe: Any,
        item_id: str,
        analysis: Analysis,
        signature: np.ndarray,
        report: Report,
        now: float,
    ) -> None:
        """Queue the one round trip that asks every question: known already? URL claimed?
        near-duplicate candidates? the candidate stories (and the article's TF-IDF vector)?
        The scripts go by their SHA: a pipeline calling them as Script objects would first
        ask SCRIPT EXISTS, a round trip more per item."""
        url = analysis.url
        url_key = self.keys.canonical(stable_id("url", url))
        generations = self._generations(now)
        near_args = [
            item_id,
            self.keys.entry(""),
            ",".join(band_buckets(signature)),
            ",".join(self.keys.lsh(g) for g in generations),
            LSH_GROUP,
        ]
        counted = "\n".join(f"{t}\t{n}\t{prior_df(t)}" for t, n in analysis.counts.items())
        story_args = [
            counted,
            PRIOR_DOCUMENTS,
            VECTOR_TERMS,
            QUERY_TERMS,
            now - self.window,
            TERM_FANOUT,
            item_id,
            STORY_CANDIDATES,
            MIN_SHARED_TERMS,
            self.keys.entry(""),
            self.keys.term(""),
            self.keys.summary_affixes[0],
            "\n".join(name_terms(report.top_names, analysis.counts)),
            self.keys.summary_affixes[1],
        ]
        pipe.hmget(self.keys.entry(item_id), "story", "duplicate_of", "outcome")
        if url:  # claim the URL, or learn who has it (SET NX GET would need Redis 7)
            pipe.set(url_key, item_id, nx=True, ex=self.window)
            pipe.get(url_key)
        self._near_candidates.queue(pipe, [], near_args)
        self._candidates.queue(pipe, [self.keys.df(g) for g in generations], story_args)

    def _decision(
        self,
        item: Item,
        article: Article,
        analysis: Analysis,
        signature: np.ndarray,
        report: Report,
        now: float,
        replies: list,
        *,
        checked: bool,
    ) -> Decision:
        """The placement from the replies of `_ask` (in order), and its record.lua call."""
        seen, *claimed, near, closest = replies
        if known := self._known(item.id, seen, claimed):
            record = None
            if known.outcome is Outcome.SAME_ITEM:
                record = self._record_call(item, article, analysis, known, now)
            return Decision(known, record)
        vector, query, query_df, found, summaries, _ = closest
        shingles = len(analysis.shingles)
        buckets = band_buckets(signature)
        placement = self._decide(item, signature, shingles, report, near, found, summaries)
        fingerprint = Fingerprint(signature, shingles, buckets, analysis.counts, vector, query)
        check = ""
        if checked and placement.outcome is not Outcome.NEAR_DUPLICATE:
            check = "\n".join(
                f"{t}\t{n}"
                for t, n in zip(query.split("\n"), query_df.split("\n"), strict=True)
                if t
            )
        generations_read = ",".join(self.keys.df(g) for g in self._generations(now))
        record = self._record_call(
            item,
            article,
            analysis,
            placement,
            now,
            fingerprint,
            report=report,
            check=(generations_read if check else "", check),
        )
        return Decision(placement, record, fingerprint, frozenset(summaries[0::7]))

    def _known(self, item_id: str, seen: list, claimed: list) -> Placement | None:
        """SEEN (the item is in the index already) or SAME_ITEM (its canonical URL is an
        earlier item's), from the first round trip's replies: the entry's story, original
        and outcome, and the URL claim (SET NX, GET); None for neither."""
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
            story = self.client.hget(self.keys.entry(first), "story")
            if story:
                return Placement(
                    outcome=Outcome.SAME_ITEM, story_id=story, duplicate_of=first, similarity=1.0
                )
        return None

    def _decide(
        self,
        item: Item,
        signature: np.ndarray,
        shingles: int,
        report: Report,
        near: list,
        found: list,
        summaries: list,
    ) -> Placement:
        """The placement, from the candidates' fingerprints (decide.py)."""
        copy = near_duplicate(signature, shingles, near, self.near_threshold)
        if copy:
            return copy
        if best := closest_story(self.model, self.story_threshold, report, found, summaries):
            return Placement(
                outcome=Outcome.SAME_STORY, story_id=best[1], similarity=round(best[0], 6)
            )
        return Placement(outcome=Outcome.NEW_STORY, story_id=stable_id("story", item.key))

    @staticmethod
    def _report(analysis: Analysis, now: float, when: datetime | None) -> Report:
        return Report(
            time=when.timestamp() if when else now,
            title=frozenset(title_terms(analysis.title_words)),
            names=frozenset(analysis.names),
            top_names=tuple(analysis.names[:QUERY_NAMES]),
            figures=frozenset(analysis.figures),
            wires=frozenset(analysis.wires),
        )

    def _generations(self, now: float) -> list[int]:
        """The generations (a window long each) of document frequencies and LSH buckets
        that cover the window: the current one and the one before. Two lookups per question
        instead of one per day; an entry is dropped from the buckets one to two windows
        after it was written (its item's own hash expires after one window, which is what
        keeps lookups inside the window)."""
        current = int(now // self.window)
        return [current - 1, current]

    def _record_call(
        self,
        item: Item,
        article: Article,
        analysis: Analysis,
        placement: Placement,
        now: float,
        fingerprint: Fingerprint | None = None,
        *,
        report: Report | None = None,
        check: tuple[str, str] = ("", ""),
    ) -> tuple[list[str], list[Any]]:
        """The record.lua call (keys, args) that writes the item's entry, its story's summary
        and (originals) its postings; it returns -1 when the check failed (another original
        with the same query terms came meanwhile)."""
        entry = entry_fields(item, article, analysis, placement, now, fingerprint, report)
        index: list[str | int] = [""] * 10
        summary = summary_args(fingerprint, report)
        # Only originals are indexed: a copy of a copy is found through the original.
        if fingerprint and placement.outcome.is_original:
            current = int(now // self.window)
            ttl = 2 * self.window  # until the last lookup that includes it
            index = [
                self.keys.df(current),
                ttl,
                "\n".join([DOCUMENTS, *fingerprint.counts]),
                self.keys.lsh(current),
                ttl,
                ",".join(fingerprint.buckets),
                self.keys.term(""),
                fingerprint.query,
                TERM_FANOUT,
                LSH_GROUP,
            ]
        story = placement.story_id
        keys = [self.keys.entry(item.id), self.keys.story(story), self.keys.story_summary(story)]
        return keys, [
            item.id,
            now,
            self.window,
            *check,
            *summary,
            *index,
            *(x for kv in entry.items() for x in kv),
        ]

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

    def originals(self, now: float | None = None) -> int:
        """About how many originals (new stories and same-story reports) the window holds:
        the current generation's count, plus the previous one's share that is still inside
        the window (as if its items had come at an even rate)."""
        now = time.time() if now is None else now
        pipe = self.client.pipeline(transaction=False)
        for generation in self._generations(now):
            pipe.hget(self.keys.df(generation), DOCUMENTS)
        previous, current = (int(n or 0) for n in pipe.execute())
        inside = 1 - (now % self.window) / self.window  # of the previous generation
        return current + round(previous * inside)


def entry_fields(
    item: Item,
    article: Article,
    analysis: Analysis,
    placement: Placement,
    now: float,
    fingerprint: Fingerprint | None,
    report: Report | None,
) -> dict[str, str | float | int]:
    """The fields of an item's entry hash (Keys.entry)."""
    entry: dict[str, str | float | int] = {
        "story": placement.story_id,
        "outcome": str(placement.outcome),
        "duplicate_of": placement.duplicate_of or "",
        "source": item.source,
        "wires": ",".join(sorted(analysis.wires)),
        "url": analysis.url,
        "title": analysis.title,
        "published": _iso(item.published or article.published),
        "time": report.time if report else now,
        "seen_at": now,
    }
    if fingerprint is not None and report is not None:
        entry["minhash"] = encode_signature(fingerprint.signature)
        entry["shingles"] = fingerprint.shingles
        entry["terms"] = fingerprint.vector
        entry["title_terms"] = " ".join(sorted(report.title))
    return entry


def summary_args(fingerprint: Fingerprint | None, report: Report | None) -> list[str | float | int]:
    """The summary update's arguments (summary.lua): vector, time, names, figures and what
    is kept of them; a vector of "" updates nothing."""
    summary: list[str | float | int] = ["", "", "", "", CENTROID_TERMS, STORY_NAMES, STORY_FIGURES]
    if fingerprint is not None and report is not None:
        summary[:4] = [
            fingerprint.vector,
            report.time,
            "|".join(sorted(report.names)),
            "|".join(sorted(report.figures)),
        ]
    return summary


def _iso(when: datetime | None) -> str:
    return when.isoformat() if when else ""
