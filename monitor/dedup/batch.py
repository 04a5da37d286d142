"""A batch of reports placed with a few round trips instead of two per report, giving the
same placements as placing them one by one (DedupIndex.place), in order.

A batch goes in rounds. A round asks the questions of its next reports in one round trip
(two at first, twice as many after a round that placed all it asked for, as many as it
placed after one that stopped: related reports, which stop rounds, are not asked for often),
each report's as if the reports before it in the round were recorded already as originals
(their document frequencies counted: story_candidates.lua's pending counts). Then the
reports are decided in order, each compared locally with those before it in the round: where
an earlier one could have changed what a later one read — the same item or URL, a shared LSH
bucket, enough shared query terms (or a full posting list), a candidate story it joined —
the round stops there, its
decisions are recorded (one round trip) and the next round starts with that report. A copy
or an already-seen report (not an original, so the counting was wrong for the rest) ends its
round too. The records keep record.lua's check, so several daemons still give one story per
event: a report whose check fails is placed again on its own.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import structlog

from monitor.dedup.analysis import Analysis
from monitor.dedup.fingerprint import band_buckets, minhash
from monitor.dedup.index import MIN_SHARED_TERMS, Decision, DedupIndex
from monitor.dedup.signals import Report
from monitor.model import Article, Item, Outcome, Placement
from monitor.store.scripts import pipelined

log = structlog.get_logger(__name__)

ORIGINAL = (Outcome.NEW_STORY, Outcome.SAME_STORY)
STEP = 1e-5  # seconds between two reports of a batch (a sorted set score keeps ~1e-6)


@dataclass(slots=True)
class _Report:
    item: Item
    article: Article
    analysis: Analysis
    signature: np.ndarray
    report: Report
    buckets: frozenset[tuple[int, str]]
    now: float  # its time of placement: the batch's, a step apart each, in order


@dataclass(slots=True)
class Rounds:
    """How a batch went: rounds of asking, reports asked for (asked again after a stop
    included), reports placed again on their own (a failed check)."""

    rounds: int = 0
    asked: int = 0
    alone: int = 0


def place_batch(
    index: DedupIndex,
    batch: list[tuple[Item, Article, Analysis]],
    now: float,
    rounds: Rounds | None = None,
) -> list[Placement]:
    """The placements of the batch's reports, in order, recorded; as `index.place` would
    give placing them one after the other at `now`."""
    reports = []
    for n, (item, article, analysis) in enumerate(batch):
        at = now + n * STEP  # members of a story stay in the order they came
        signature = minhash(analysis.shingles)
        report = index._report(analysis, at, item.time or article.published)
        buckets = frozenset(enumerate(band_buckets(signature)))
        reports.append(_Report(item, article, analysis, signature, report, buckets, at))
    rounds = rounds if rounds is not None else Rounds()
    placed: list[Placement] = []
    ask = 2  # reports asked for per round: doubled after a round placed all, else what it placed
    while len(placed) < len(reports):
        rest = reports[len(placed) : len(placed) + ask]
        rounds.rounds += 1
        rounds.asked += len(rest)
        decided = _round(index, rest)
        ask = 2 * ask if len(decided) == len(rest) else len(decided)
        records = [d.record for d in decided if d.record is not None]

        def write(pipe: object, records: list = records) -> None:
            for keys, args in records:
                index._record_lua.queue(pipe, keys, args)

        written = iter(pipelined(index.client, write, (index._record_lua,)) if records else [])
        for r, decision in zip(rest, decided, strict=False):
            placement = decision.placement
            if decision.record is not None and next(written) == -1:
                # Another daemon recorded an original with the same terms meanwhile.
                rounds.alone += 1
                placement = index.place(r.item, r.article, r.now, analysis=r.analysis)
            placed.append(placement)
    return placed


def _round(index: DedupIndex, reports: list[_Report]) -> list[Decision]:
    """Ask for all of `reports` in one round trip; decide them in order until one may have
    read something an earlier one changes (at least one is decided)."""
    pending: list[tuple[int, Counter[str] | None]] = []
    carried = Counter[str]()  # per term: the reports before this one that carry it
    for documents, r in enumerate(reports):
        pending.append(
            (documents, Counter({t: carried[t] for t in r.analysis.counts if t in carried}))
        )
        carried.update(r.analysis.counts.keys())

    def ask(pipe: object) -> None:
        for r, counted in zip(reports, pending, strict=True):
            index._ask(pipe, r.item.id, r.analysis, r.signature, r.report, r.now, counted)

    replies = pipelined(index.client, ask, (index._near_candidates, index._candidates))
    decided: list[Decision] = []
    earlier: list[tuple[_Report, Decision]] = []
    at = 0
    for r in reports:
        size = 5 if r.analysis.url else 3
        answers, at = replies[at : at + size], at + size
        query = frozenset(answers[-1][1].split("\n")) - {""}
        if earlier and _changed(r, query, frozenset(answers[-1][5]), earlier):
            break
        decision = index._decision(
            r.item, r.article, r.analysis, r.signature, r.report, r.now, answers, checked=True
        )
        decided.append(decision)
        if decision.placement.outcome not in ORIGINAL:
            break  # not counted after all: the rest were asked with one document too many
        if decision.stories & {d.placement.story_id for _, d in earlier}:
            decided.pop()  # it weighed a story an earlier report joined: ask again
            break
        earlier.append((r, decision))
    return decided


def _changed(
    r: _Report,
    query: frozenset[str],
    full: frozenset[str],
    earlier: list[tuple[_Report, Decision]],
) -> bool:
    """Whether an earlier original of the round wrote something this report reads: its
    entry or URL, an LSH bucket of its, postings that make it a candidate (enough shared
    query terms) or that push a posting out of one of its query terms' (`full`)."""
    for other, decision in earlier:
        if other.item.id == r.item.id or (r.analysis.url and other.analysis.url == r.analysis.url):
            return True
        if other.buckets & r.buckets:
            return True
        fingerprint = decision.fingerprint
        if fingerprint is not None:
            shared = query.intersection(fingerprint.query.split("\n"))
            if len(shared) >= MIN_SHARED_TERMS or shared & full:
                return True
    return False
