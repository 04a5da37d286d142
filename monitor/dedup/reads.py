"""The reads of a placement's look, the same on one server (dedup/server.py) and a cluster
(dedup/spread.py): plain commands, pipelined, one round trip per step (each step needs the
previous one's answer); dedup/gather.py computes the candidates from the replies.

No script reads here: Redis's one thread is the part every daemon shares (issue 31), so it
only fetches — the vector's weights, the candidates' ranking and their cosines are the
daemon's arithmetic, which scales out with the daemons.

    frequencies    the article's terms' document frequencies in the window's generations
    vector         the article's vector and query terms from them (dedup/gather.py)
    candidates     its LSH buckets' members and its query terms' postings (one round trip;
                   on one server one call of lookups.lua, reads only),
                   their entries (one), their stories' summaries (one)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from monitor.dedup import gather
from monitor.dedup.calls import Found, LookupsCall, NearCandidate, StorySummary
from monitor.dedup.fingerprint import PRIOR_DOCUMENTS, VECTOR_TERMS, prior_df
from monitor.dedup.signals import Report, name_terms
from monitor.dedup.store import (
    DOCUMENTS,
    MIN_SHARED_TERMS,
    QUERY_TERMS,
    STORY_CANDIDATES,
    TERM_FANOUT,
)
from monitor.store.keys import LSH_GROUP, Keys
from monitor.store.scripts import Lua, pipelined

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


def vector(
    counts: dict[str, float], df: list[int], documents: int, report: Report
) -> gather.Vector:
    """The article's vector and query terms as the index weighs them: `df[i]` belongs to the
    i-th term of `counts`, `documents` counts the window's originals."""
    return gather.vector(
        counts,
        [prior_df(t) for t in counts],
        df,
        documents,
        prior_documents=PRIOR_DOCUMENTS,
        keep=VECTOR_TERMS,
        query=QUERY_TERMS,
        names=name_terms(report.top_names, counts),
    )


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
    lookups: Lua | None = None,
) -> Gathered:
    """The report's candidates, in three round trips: the members of its LSH buckets in
    `generations` and its query terms' postings within `window` either side of `when`
    (`lookups`: in one call of lookups.lua, on one server; else plain commands); the
    entries found there; their stories' summaries."""
    fields = gather.bucket_fields(buckets, LSH_GROUP)

    buckets_read = [
        (keys.lsh(generation) + suffix, field)
        for suffix, field in fields
        for generation in generations
    ]
    postings_read = [keys.term(term) for term in vector.query]
    if lookups is not None:  # one server: one call
        read_once = lookups(
            LookupsCall(
                "\n".join(f"{key}\t{field}" for key, field in buckets_read),
                "\n".join(postings_read),
                when + window,
                when - window,
                TERM_FANOUT,
            )
        )
        members: Sequence[str | None] = read_once.members
        postings: Sequence[list[str]] = read_once.postings
    else:

        def ask(pipe: Any) -> None:
            for key, field in buckets_read:
                pipe.hget(key, field)
            for key in postings_read:
                pipe.zrevrangebyscore(key, when + window, when - window, start=0, num=TERM_FANOUT)

        replies = pipelined(client, ask, ())
        members, postings = replies[: len(buckets_read)], replies[len(buckets_read) :]
    near_ids = gather.bucket_ids(members, item_id)
    ranked = gather.ranked(
        vector.query,
        postings,
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
