"""The reads of a placement's look, the same on one server (dedup/server.py) and a cluster
(dedup/spread.py): plain commands, pipelined, one round trip per step (each step needs the
previous one's answer); dedup/gather.py computes the candidates from the replies.

No script reads here: Redis's one thread is the part every daemon shares (issue 31), so it
only fetches — the vector's weights, the candidates' ranking and their cosines are the
daemon's arithmetic, which scales out with the daemons.

    frequencies    the article's terms' document frequencies in the window's generations
    candidates     its LSH buckets' members and its query terms' postings (one round trip),
                   their entries (one), their stories' summaries (one)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from monitor.dedup import gather
from monitor.dedup.calls import Found, NearCandidate, StorySummary
from monitor.dedup.store import DOCUMENTS, MIN_SHARED_TERMS, STORY_CANDIDATES, TERM_FANOUT
from monitor.store.keys import LSH_GROUP, Keys
from monitor.store.scripts import pipelined

SUMMARY_FIELDS = ("size", "oldest", "newest", "centroid", "names", "figures")


@dataclass(frozen=True, slots=True)
class Gathered:
    """A report's candidates: near-duplicates, same-story candidates and their stories, and
    the vectors of candidate stories of one report (their one member's: a cluster's
    story.lua needs it to start a centroid)."""

    near: list[NearCandidate]
    found: list[Found]
    stories: list[StorySummary]
    founders: dict[str, str]


def ask_frequencies(pipe: Any, keys: Keys, generations: list[int], terms: list[str]) -> None:
    """Queue one HMGET per generation: its originals counted, then each term's frequency."""
    for generation in generations:
        pipe.hmget(keys.df(generation), DOCUMENTS, *terms)


def frequencies(replies: list[list[Any]], terms: int) -> tuple[int, list[int]]:
    """The originals counted and each term's frequency, summed over the generations'
    replies of `ask_frequencies`."""
    documents, df = 0, [0] * terms
    for reply in replies:
        documents += int(reply[0] or 0)
        for i, n in enumerate(reply[1:]):
            if n is not None:
                df[i] += int(n)
    return documents, df


def candidates(
    client: Any,
    keys: Keys,
    *,
    window: int,
    item_id: str,
    buckets: list[str],
    vector: gather.Vector,
    when: float,
    generations: list[int],
) -> Gathered:
    """The report's candidates, in three round trips: the members of its LSH buckets in
    `generations` and its query terms' postings within `window` either side of `when`;
    the entries found there; their stories' summaries."""
    fields = gather.bucket_fields(buckets, LSH_GROUP)

    def lookups(pipe: Any) -> None:
        for suffix, field in fields:
            for generation in generations:
                pipe.hget(keys.lsh(generation) + suffix, field)
        for term in vector.query:
            pipe.zrevrangebyscore(
                keys.term(term), when + window, when - window, start=0, num=TERM_FANOUT
            )

    replies = pipelined(client, lookups, ())
    split = len(fields) * len(generations)
    near_ids = gather.bucket_ids(replies[:split], item_id)
    ranked = gather.ranked(
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
        for cid in ranked:
            pipe.hmget(keys.entry(cid), "terms", "story", "title_terms", "wires")

    replies = pipelined(client, entries, ()) if near_ids or ranked else []
    near = [NearCandidate(cid, *found) for cid, found in zip(near_ids, replies, strict=False)]
    read = replies[len(near_ids) :]
    named = list(dict.fromkeys(story for terms, story, *_ in read if terms and story))

    def summaries(pipe: Any) -> None:
        for story in named:
            pipe.hmget(keys.story_summary(story), *SUMMARY_FIELDS)

    replies = pipelined(client, summaries, ()) if named else []
    summary = dict(zip(named, replies, strict=True))
    found, stories = gather.scored(vector.weights, ranked, read, summary)
    founders = {
        story: terms
        for terms, story, *_ in read
        if terms and story in summary and not summary[story][3]
    }
    return Gathered(near, found, stories, founders)
