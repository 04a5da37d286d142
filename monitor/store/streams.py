"""Redis Streams read by consumer groups: entries handed to one member each, pending until
acked, re-claimed after `min_idle`, dead-lettered when they keep failing. The items stream
(ingest) and the alerts stream (delivery) are both read this way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import redis
import structlog

from monitor.store.retention import group_lags
from monitor.store.scripts import KEY, Call, Lua

T = TypeVar("T")
log = structlog.get_logger(__name__)

TRIMMED = "trimmed before delivery"  # the dead-letter reason of a pending entry trimmed away


@dataclass(frozen=True, slots=True)
class Autoclaimed:
    """autoclaim.lua's reply."""

    cursor: str  # where the next call starts ('0-0': the end of the pending list)
    claimed: list[str]  # the ids taken over
    deleted: list[str]  # pending ids whose entries were trimmed (Redis 7; none on 6.2)


@dataclass(frozen=True, slots=True)
class AutoclaimCall(Call[Autoclaimed]):
    """XAUTOCLAIM ... JUSTID with its cursor (store/autoclaim.lua)."""

    script: ClassVar[str] = "autoclaim"
    package: ClassVar[str] = "monitor.store"

    stream: str = field(metadata=KEY)
    group: str
    consumer: str
    min_idle_ms: int
    start: str
    count: int

    def parse(self, reply: Any) -> Autoclaimed:
        cursor, claimed, deleted = reply
        return Autoclaimed(cursor or "0-0", list(claimed), list(deleted))


@dataclass(frozen=True, slots=True)
class Entry(Generic[T]):
    """One stream entry as a group member received it."""

    entry_id: str
    value: T | None  # None: the entry could not be decoded
    raw: dict[str, str]
    deliveries: int = 1  # how often the group has handed it out, this time included


class StreamGroup(Generic[T]):
    """One consumer group on one stream: new entries go to one member each and stay
    pending until acked; entries a member left pending for `min_idle` are re-claimed with
    their delivery count, and those that keep failing are moved to a dead-letter stream."""

    def __init__(
        self,
        client: redis.Redis,
        stream: str,
        group: str,
        *,
        field: str,
        decode: Callable[[str], T],
        dead_stream: str,
        dead_maxlen: int = 100_000,
    ) -> None:
        self.client = client
        self.stream = stream
        self.group = group
        self.field = field
        self.decode = decode
        self.dead_stream = dead_stream
        self.dead_maxlen = dead_maxlen
        self._cursor = "0-0"
        self._autoclaim = Lua(client, AutoclaimCall)
        self.trimmed = 0  # pending entries found trimmed (and dead-lettered) by this object

    def ensure_group(self) -> None:
        """Create the group at the start of the retained stream, so it misses nothing."""
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(self, consumer: str, *, count: int, block_ms: int | None = None) -> list[Entry[T]]:
        reply = self.client.xreadgroup(
            self.group, consumer, {self.stream: ">"}, count=count, block=block_ms
        )
        return [self._entry(eid, fields) for eid, fields in stream_entries(reply)]

    def claim_stale(self, consumer: str, *, min_idle_ms: int, count: int) -> list[Entry[T]]:
        """Take over entries left pending (by any member, this one too) for `min_idle_ms`,
        with their delivery counts. Entries trimmed from the stream while pending are
        dead-lettered ("trimmed before delivery"). Successive calls walk the whole pending
        list (a cursor is kept)."""
        # Through Lua: redis-py drops the cursor of a JUSTID reply. Redis 7 removes trimmed
        # entries from the pending list itself and names them in a third element.
        reply = self._autoclaim(
            AutoclaimCall(self.stream, self.group, consumer, min_idle_ms, self._cursor, count)
        )
        self._cursor = reply.cursor
        self._trimmed(reply.deleted, {})
        return self._take(consumer, reply.claimed)

    def rewind(self) -> None:
        """Start the next claim_stale at the beginning of the pending list."""
        self._cursor = "0-0"

    @property
    def rewound(self) -> bool:
        """Whether the last claim_stale reached the end of the pending list."""
        return self._cursor == "0-0"

    def take_own(self, consumer: str, *, count: int) -> list[Entry[T]]:
        """This member's own pending entries, oldest first, at once: a daemon restarted under
        the same consumer name carries on with what it held, before anything new. Each take
        counts as a delivery, so an entry that keeps killing the process ends in the dead
        letters."""
        pending = self.client.xpending_range(
            self.stream, self.group, min="-", max="+", count=count, consumername=consumer
        )
        return self._take(consumer, [p["message_id"] for p in pending])

    def consumers(self) -> dict[str, int]:
        """The group's members and how many entries each holds pending."""
        try:
            found = self.client.xinfo_consumers(self.stream, self.group)
        except redis.ResponseError:  # no stream or group yet
            return {}
        return {str(c["name"]): int(c["pending"]) for c in found}

    def take_from(self, consumer: str, others: list[str], *, count: int) -> list[Entry[T]]:
        """The entries `others` (members known to be dead) hold pending, oldest first
        across them — the order they were read in — claimed for `consumer` at once. An entry
        another member claimed in the last second is left to it."""
        pipe = self.client.pipeline(transaction=False)
        for name in others:
            pipe.xpending_range(
                self.stream, self.group, min="-", max="+", count=count, consumername=name
            )
        ids = sorted((p["message_id"] for pending in pipe.execute() for p in pending), key=_order)[
            :count
        ]
        return self._take(consumer, ids, min_idle_ms=1000)

    def forget(self, *names: str) -> None:
        """Remove members that hold nothing (dead daemons' names pile up otherwise)."""
        for name in names:
            self.client.xgroup_delconsumer(self.stream, self.group, name)

    def _take(self, consumer: str, ids: list[str], *, min_idle_ms: int = 0) -> list[Entry[T]]:
        """Claim `ids` for `consumer` (trimmed ones are dead-lettered), with their
        delivery counts."""
        if not ids:
            return []
        pipe = self.client.pipeline(transaction=False)
        for entry_id in ids:
            pipe.xrange(self.stream, min=entry_id, max=entry_id)
        alive = [entry_id for entry_id, found in zip(ids, pipe.execute(), strict=True) if found]
        gone = sorted(set(ids) - set(alive))
        if gone:  # trimmed while pending: nothing left to deliver, but said and kept aside
            pending = self.client.xpending_range(
                self.stream, self.group, min=gone[0], max=gone[-1], count=len(ids) * 4 + 100
            )
            self._trimmed(gone, {p["message_id"]: p["times_delivered"] for p in pending})
        if not alive:
            return []
        # JUSTID does not count a delivery: XCLAIM does, and returns the entries.
        claimed = self.client.xclaim(self.stream, self.group, consumer, min_idle_ms, alive)
        if not claimed:
            return []
        pending = self.client.xpending_range(
            self.stream,
            self.group,
            min=alive[0],
            max=alive[-1],
            count=len(alive) * 4 + 100,
            consumername=consumer,
        )
        times = {p["message_id"]: p["times_delivered"] for p in pending}
        return [self._entry(eid, fields, times.get(eid, 1)) for eid, fields in claimed if fields]

    def ack(self, *entry_ids: str) -> None:
        if entry_ids:
            self.client.xack(self.stream, self.group, *entry_ids)

    def _trimmed(self, entry_ids: list[str], deliveries: dict[str, int]) -> None:
        """Pending entries the stream's retention trimmed away: dead letters with the reason
        (their content is gone, their ids and counts are not), never silently acked."""
        if not entry_ids:
            return
        log.error(
            "entries_trimmed_before_delivery",
            stream=self.stream,
            group=self.group,
            entries=len(entry_ids),
            first=entry_ids[0],
            hint="the group fell behind the stream's retention",
        )
        for entry_id in entry_ids:
            self.dead_letter(Entry(entry_id, None, {}, deliveries.get(entry_id, 0)), TRIMMED)
        self.trimmed += len(entry_ids)

    def dead_letter(self, entry: Entry[T], reason: str, **context: str) -> None:
        """Move an entry that cannot be handled aside, with the reason, and ack it."""
        fields = {
            **entry.raw,
            "reason": reason,
            "entry": entry.entry_id,
            "group": self.group,
            "deliveries": str(entry.deliveries),
            **context,
        }
        pipe = self.client.pipeline(transaction=True)
        pipe.xadd(self.dead_stream, fields, maxlen=self.dead_maxlen, approximate=True)
        pipe.xack(self.stream, self.group, entry.entry_id)
        pipe.execute()

    def lag(self) -> tuple[int, int]:
        """(entries not yet delivered to the group, entries delivered but not acked)."""
        for found in group_lags(self.client, self.stream, maxlen=1):
            if found.group == self.group:
                return found.lag, found.pending
        return 0, 0

    def _entry(self, entry_id: str, fields: dict[str, str], deliveries: int = 1) -> Entry[T]:
        try:
            value: T | None = self.decode(fields[self.field])
        except Exception:  # any undecodable entry is dead-lettered, never fatal
            value = None
        return Entry(entry_id, value, fields, deliveries)


def _order(entry_id: str) -> tuple[int, int]:
    """A stream entry id as a sortable pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def stream_entries(reply: Any) -> list[tuple[str, dict[str, str]]]:
    """The entries of an XREAD or XREADGROUP reply on one stream, as RESP2 or RESP3 gives
    it (a list of [stream, entries] pairs, or a map from stream to entries)."""
    if not reply:
        return []
    if isinstance(reply, dict):  # RESP3
        return next(iter(reply.values()))[0]
    return reply[0][1]  # RESP2
