"""The dedup index's Lua scripts as typed calls: for each `.lua` of this package that Python
runs, its arguments by name (a `Call`: KEYS and ARGV in the header's order) and its reply
as a named dataclass. One server runs lookups and record; a cluster runs snapshot, commit,
story, bucket and post (summary.lua, activity.lua, count.lua and frequencies.lua are
included in others, never called). A look's other reads are plain commands on both
(dedup/reads.py); the replies' records (NearCandidate, Found, StorySummary) are here.

Some scripts build key names from prefixes (the entry, term and LSH prefixes of `Keys`)
and take terms, buckets and generations as one joined argument each: packing and parsing a
few hundred separate arguments and replies costs more than the work itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from monitor.store.scripts import KEY, SPREAD, Call

PACKAGE = "monitor.dedup"


def _lines(text: str) -> list[str]:
    return text.split("\n") if text else []


# --- replies -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NearCandidate:
    """An earlier original in one of an item's LSH buckets, with its fingerprint (None:
    its entry expired meanwhile)."""

    id: str
    minhash: str | None
    story: str | None
    duplicate_of: str | None
    shingles: str | None


@dataclass(frozen=True, slots=True)
class Found:
    """A same-story candidate: an earlier original sharing enough query terms."""

    id: str
    story: str
    cosine: float  # of the two TF-IDF vectors
    title_terms: str  # space-joined
    wires: str  # comma-joined


@dataclass(frozen=True, slots=True)
class StorySummary:
    """A candidate's story as its summary says (strings as stored; "" for absent)."""

    story: str
    size: str
    oldest: str
    newest: str
    centroid: str  # the cosine with the story's centroid; "": a story of one report
    names: str  # "|"-joined
    figures: str


@dataclass(frozen=True, slots=True)
class Recorded:
    """record.lua's reply."""

    written: bool  # False: the check failed, nothing written (decide again)
    indexed: bool  # posted, bucketed and counted (an original)


@dataclass(frozen=True, slots=True)
class InFlight:
    """A placement committed on a cluster and not written yet."""

    placing: str  # its placement log entry id
    item: str
    terms: list[str]  # its query terms


@dataclass(frozen=True, slots=True)
class Snapshot:
    """snapshot.lua's reply."""

    last: str  # the placement log's last entry id ('0-0': none)
    flying: list[InFlight]
    documents: int  # originals counted in the window's generations
    frequencies: list[int]  # of the article's terms, in order
    taken_at: int  # the server's time (ms)


@dataclass(frozen=True, slots=True)
class Committed:
    """commit.lua's reply."""

    placing: str | None  # the placement's log entry id; None: decide again


@dataclass(frozen=True, slots=True)
class Joined:
    """story.lua's reply."""

    joined: bool  # False: a member already, or nothing written (`needs_founder`)
    needs_founder: bool  # the summary needs the vector of the story's one member
    counted: bool = False  # its activity counted (the stream's is then the caller's to count)
    first_of_hour: bool = False  # the story's first report of its hour (of report time)


@dataclass(frozen=True, slots=True)
class Bucketed:
    """bucket.lua's reply."""

    added: bool  # False: there already


@dataclass(frozen=True, slots=True)
class Posted:
    """post.lua's reply (it always posts)."""

    posted: bool


# --- calls ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lookups:
    """lookups.lua's reply."""

    members: list[str]  # each bucket's members, comma-joined ("" for none)
    postings: list[list[str]]  # each query term's ids, newest first


@dataclass(frozen=True, slots=True)
class LookupsCall(Call[Lookups]):
    """A look's second step in one call (one server): LSH buckets and postings, read only."""

    script: ClassVar[str] = "lookups"
    package: ClassVar[str] = PACKAGE

    buckets: str  # "hash<TAB>field" lines
    postings: str  # posting keys, newline-joined
    until: float
    since: float
    fanout: int

    def parse(self, reply: Any) -> Lookups:
        members, postings = reply
        return Lookups(list(members), [ids.split(",") if ids else [] for ids in postings])


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordCall(Call[Recorded]):
    """Everything an item leaves in the index, in one step (one server). The check and the
    indexing are left empty ("") when not wanted: no check, not an original."""

    script: ClassVar[str] = "record"
    package: ClassVar[str] = PACKAGE

    entry: str = field(metadata=KEY)
    story: str = field(metadata=KEY)
    summary: str = field(metadata=KEY)
    activity: str = field(metadata=KEY)
    active: str = field(metadata=KEY)
    id: str
    when: float
    window: int
    check_keys: str = ""
    check_terms: str = ""
    vector: str = ""
    time: float | str = ""
    names: str = ""
    figures: str = ""
    centroid_size: int
    names_kept: int
    figures_kept: int
    df: str = ""
    df_ttl: int | str = ""
    counted: str = ""
    lsh: str = ""
    lsh_ttl: int | str = ""
    buckets: str = ""
    term_prefix: str = ""
    query: str = ""
    fanout: int | str = ""
    group: int | str = ""
    source: str = ""
    story_id: str = ""
    bucket: int | str = ""
    buckets_kept: int | str = ""
    sources_kept: int | str = ""
    day_prefix: str = ""
    fields: list[Any] = field(metadata=SPREAD)

    def parse(self, reply: Any) -> Recorded:
        return Recorded(written=reply != -1, indexed=reply == 1)


@dataclass(frozen=True, slots=True)
class SnapshotCall(Call[Snapshot]):
    """Where placement on a cluster starts: frequencies and the placement log's state."""

    script: ClassVar[str] = "snapshot"
    package: ClassVar[str] = PACKAGE

    previous: str = field(metadata=KEY)
    current: str = field(metadata=KEY)
    log: str = field(metadata=KEY)
    flight: str = field(metadata=KEY)
    terms: str

    def parse(self, reply: Any) -> Snapshot:
        last, flying, documents, frequencies, taken_at = reply
        return Snapshot(
            last,
            [InFlight(p, item, terms.split("\n")) for p, item, terms in _rows(flying, 3)],
            int(documents),
            [int(n) for n in _lines(frequencies)],
            taken_at,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitCall(Call[Committed]):
    """The commit of an original's placement on a cluster."""

    script: ClassVar[str] = "commit"
    package: ClassVar[str] = PACKAGE

    df: str = field(metadata=KEY)
    log: str = field(metadata=KEY)
    flight: str = field(metadata=KEY)
    last: str
    taken_at: int
    flying: str
    id: str
    query: str
    counted: str
    df_ttl: int
    flight_ms: int
    check: str
    log_ms: int
    min_shared: int

    def parse(self, reply: Any) -> Committed:
        return Committed(None if reply == -1 else str(reply))


@dataclass(frozen=True, slots=True, kw_only=True)
class StoryCall(Call[Joined]):
    """A report joins its story and updates its summary (a cluster)."""

    script: ClassVar[str] = "story"
    package: ClassVar[str] = PACKAGE

    story: str = field(metadata=KEY)
    summary: str = field(metadata=KEY)
    activity: str = field(metadata=KEY)
    id: str
    when: float
    window: int
    vector: str = ""
    time: float | str = ""
    names: str = ""
    figures: str = ""
    centroid_size: int
    names_kept: int
    figures_kept: int
    founder: str = ""
    source: str = ""
    bucket: int | str = ""
    buckets_kept: int | str = ""
    sources_kept: int | str = ""

    def parse(self, reply: Any) -> Joined:
        reply = int(reply)
        return Joined(
            joined=reply in (1, 2, 3),
            needs_founder=reply == -2,
            counted=bool(self.source) and reply in (1, 2),
            first_of_hour=reply == 2,
        )


@dataclass(frozen=True, slots=True)
class BucketCall(Call[Bucketed]):
    """An original enters one LSH bucket (a cluster)."""

    script: ClassVar[str] = "bucket"
    package: ClassVar[str] = PACKAGE

    group: str = field(metadata=KEY)
    field: str
    id: str
    ttl: int

    def parse(self, reply: Any) -> Bucketed:
        return Bucketed(reply == 1)


@dataclass(frozen=True, slots=True)
class PostCall(Call[Posted]):
    """An original is posted under one of its query terms (a cluster)."""

    script: ClassVar[str] = "post"
    package: ClassVar[str] = PACKAGE

    postings: str = field(metadata=KEY)
    id: str
    when: float
    keep: int
    ttl: int

    def parse(self, reply: Any) -> Posted:
        return Posted(reply == 1)


def _rows(flat: list, width: int) -> list[list]:
    """A flat reply list cut into rows of `width` values."""
    return [flat[i : i + width] for i in range(0, len(flat), width)]
