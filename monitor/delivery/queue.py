"""Redis Streams: the alerts stream and its consumers.

Publishing is idempotent: an alert id is published at most once while its marker key
lives (`alert_id_ttl_days`), so a re-delivered item or a second replay adds nothing.
An alert's claim (which item raises `new` or update n for a story and rule), its marker and
its XADD happen in one Lua script: no crash can leave a claim without its alert.

Staged alerts (`hold` > 0, the daemon's `alerts.durable_hold`): an alert goes first to a
staged stream, and `release` moves it to the alerts stream once it is `hold` seconds old, so that
consumers only see alerts whose story and claim are on disk. Redis with `appendfsync
everysec` may lose the last second or two of writes in a crash; were an alert seen and its
placement lost, daemons re-processing the lost items in another order could found another
story for the same event and raise a second `new`.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import redis
import structlog

from monitor.errors import MonitorError
from monitor.model import AlertKind
from monitor.store.keys import Keys
from monitor.store.scripts import KEY, Call, Lua
from monitor.store.streams import stream_entries

T = TypeVar("T")
log = structlog.get_logger(__name__)

ASK = -2  # the claim argument that only asks
# The field of an alerts-stream entry (and of its dead letters) holding the alert's JSON;
# claim_publish.lua writes it under this name.
ALERT_FIELD = "alert"


@dataclass(frozen=True, slots=True)
class Claimed:
    """claim_publish.lua's reply."""

    claim: int  # the item's claim (0: new, n: update n; -1: nothing to raise)
    entry: str | None  # the stream entry written, None: nothing written
    held_until: float | None = None  # claim -1: when the story's quiet period for the rule ends


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimPublishCall(Call[Claimed]):
    """Publish an alert, with (`claims` set) the claim for its story and rule, in one step."""

    script: ClassVar[str] = "claim_publish"
    package: ClassVar[str] = "monitor.delivery"

    marker: str = field(metadata=KEY)
    stream: str = field(metadata=KEY)
    counter: str = field(metadata=KEY)
    claims: str | None = field(default=None, metadata=KEY)
    alert: str
    marker_ttl: int
    maxlen: int
    alert_id: str
    min_id: str
    staged: int = 0
    rule: str | None = None
    item: str | None = None
    claim_ttl: int | None = None
    now: float | None = None
    quiet: float | None = None
    claim: int | None = None
    kind: str | None = None

    def parse(self, reply: Any) -> Claimed:
        claim, entry, *held = reply
        until = float(held[0]) if held else None
        return Claimed(int(claim), str(entry) if entry else None, until)


@dataclass(frozen=True, slots=True)
class Released:
    """release_staged.lua's reply."""

    count: int  # alerts moved to the alerts stream
    wait: float | None  # seconds until the oldest one still staged is due; None: none is
    staged: int  # alerts still staged


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseCall(Call[Released]):
    """Move the staged alerts that are old enough to the alerts stream."""

    script: ClassVar[str] = "release_staged"
    package: ClassVar[str] = "monitor.delivery"

    staged: str = field(metadata=KEY)
    stream: str = field(metadata=KEY)
    counter: str = field(metadata=KEY)
    hold_ms: int
    maxlen: int
    min_id: str
    count: int

    def parse(self, reply: Any) -> Released:
        count, wait_ms, staged = (int(n) for n in reply)
        return Released(count, None if wait_ms < 0 else wait_ms / 1000, staged)


@dataclass(frozen=True, slots=True)
class Raised:
    """What claiming an alert for (story, rule) did: the alert built and its entry, or
    (no alert) until when the story's updates for the rule are held."""

    alert: dict[str, Any] | None  # None: nothing to raise
    entry: str | None  # the stream entry written now; None: none (published before)
    held_until: float | None = None  # no alert: when the quiet period ends (Unix seconds)
    unwanted: bool = False  # no alert: it would be an update, and updates were not wanted


class ClaimRace(MonitorError):
    """The claim kept changing under concurrent daemons (it should settle in one retry)."""


@dataclass(frozen=True, slots=True)
class Delivered:
    entry_id: str  # the stream entry id
    alert: dict[str, Any]


class AlertQueue:
    """The alerts stream. Retention: at most ~`maxlen` alerts and, if `max_age` (seconds) is
    set, none older than that; trimming happens as alerts are published.

    Claims (claim_and_publish): a story's claims live `claim_ttl` seconds (by default as
    long as the alert ids, `id_ttl`); `quiet` seconds at least between two updates of one
    story for one rule; `hold` seconds: alerts wait in the staged stream until `release`
    moves them, once that old (0: published at once)."""

    RELEASE_BATCH: ClassVar[int] = 500  # alerts moved by one release call at most

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        maxlen: int,
        id_ttl: int,
        max_age: float = 0,
        claim_ttl: int | None = None,
        quiet: float = 3600.0,
        hold: float = 0.0,
    ) -> None:
        self.client = client
        self.keys = keys
        self.maxlen = maxlen
        self.id_ttl = id_ttl
        self.max_age = max_age
        self.claim_ttl = id_ttl if claim_ttl is None else claim_ttl
        self.quiet = quiet  # seconds between two updates of one story for one rule
        self.hold = hold
        self.staging = threading.Event()  # set when this queue stages an alert
        self._script = Lua(client, ClaimPublishCall)
        self._release = Lua(client, ReleaseCall)

    def publish(self, alert: dict[str, Any]) -> str | None:
        """Append the alert unless its id was published before (staged, with a hold); the
        entry id, or None."""
        entry = self._script(self._publishing(alert)).entry
        if entry is not None and self.hold:
            self.staging.set()
        return entry

    def release(self) -> Released:
        """Move the staged alerts at least `hold` seconds old to the alerts stream (any
        daemon's: it is one script, so several daemons releasing move each alert once).
        Returns how many it moved, and what is still staged."""
        moved = 0
        while True:
            done = self._release(
                ReleaseCall(
                    staged=self.keys.alerts_staged,
                    stream=self.keys.alerts,
                    counter=self.keys.counter(self.keys.alerts),
                    hold_ms=int(self.hold * 1000),
                    maxlen=self.maxlen,
                    min_id=self._min_id(),
                    count=self.RELEASE_BATCH,
                )
            )
            moved += done.count
            if done.count < self.RELEASE_BATCH or done.wait != 0:
                return dataclasses.replace(done, count=moved)

    def claim_and_publish(
        self,
        story_id: str,
        rule_id: str,
        item_id: str,
        build: Callable[[AlertKind, int], dict[str, Any]],
        *,
        at: float | None = None,
        guess: int | None = None,
        updates: bool = True,
    ) -> Raised:
        """Claim the alert this item raises for (story, rule), if any, and publish it, in
        one step: the first matching item of a story claims `new`; a later one claims update
        number n when the story's last alert for the rule is at least `quiet` seconds older
        than `at`; others nothing (held until that period ends). The same item always gets
        the same claim, so a re-delivered item re-publishes the same alert id (a no-op once
        published). Returns the alert built by `build(kind, update)` and its entry id (None:
        already there), or no alert and until when updates are held.
        `guess`: the claim to build first without asking (0 for the first report of a new
        story: one round trip instead of two when right; a wrong guess writes nothing).
        Without `updates`, an update is not raised (nor claimed: the quiet period does not
        start), only `new`."""
        now = time.time() if at is None else at
        claims = self.keys.story_alerts(story_id)

        def claiming(call: ClaimPublishCall, claim: int) -> ClaimPublishCall:
            return dataclasses.replace(
                call,
                claims=claims,
                rule=rule_id,
                item=item_id,
                claim_ttl=self.claim_ttl,
                now=now,
                quiet=self.quiet,
                claim=claim,
            )

        if guess is None:
            asked = self._script(claiming(self._asking(), ASK))
            claim, held_until = asked.claim, asked.held_until
        else:
            claim, held_until = guess, None
        for _attempt in range(5):
            if claim < 0:
                return Raised(None, None, held_until)
            if claim > 0 and not updates:
                return Raised(None, None, unwanted=True)
            kind = AlertKind.NEW if claim == 0 else AlertKind.UPDATE
            alert = build(kind, int(claim))
            reply = self._script(claiming(self._publishing(alert), claim))
            if reply.claim == claim:
                if reply.entry is not None and self.hold:
                    self.staging.set()
                return Raised(alert, reply.entry)
            # Another daemon claimed meanwhile (or the guess was wrong): build what is left.
            claim, held_until = reply.claim, reply.held_until
        raise ClaimRace(f"story {story_id}, rule {rule_id}: the claim kept changing")

    def claim_breaking(
        self,
        story_id: str,
        rule_id: str,
        item_id: str,
        build: Callable[[int], dict[str, Any]],
        *,
        at: float,
        quiet: float,
    ) -> Raised:
        """Claim and publish a `breaking` alert for (story, rule): break number n unless the
        story broke for the rule less than `quiet` seconds of report time before `at` (the
        report's time). The same item always gets the same break number (a re-delivery
        publishes the same id, a no-op)."""
        claims = self.keys.story_alerts(story_id)

        def claiming(call: ClaimPublishCall, claim: int) -> ClaimPublishCall:
            return dataclasses.replace(
                call,
                claims=claims,
                rule=rule_id,
                item=item_id,
                claim_ttl=self.claim_ttl,
                now=at,
                quiet=quiet,
                claim=claim,
                kind=str(AlertKind.BREAKING),
            )

        asked = self._script(claiming(self._asking(), ASK))
        claim, held_until = asked.claim, asked.held_until
        for _attempt in range(5):
            if claim < 0:
                return Raised(None, None, held_until)
            alert = build(claim)
            reply = self._script(claiming(self._publishing(alert), claim))
            if reply.claim == claim:
                return Raised(alert, reply.entry)
            claim, held_until = reply.claim, reply.held_until
        raise ClaimRace(f"story {story_id}, rule {rule_id}: the breaking claim kept changing")

    def _asking(self) -> ClaimPublishCall:
        """A claim_publish call that only asks for the claim: the alert's arguments are not
        read (its marker key only names the alerts stream's slot)."""
        return ClaimPublishCall(
            marker=self.keys.alert_seen(""),
            stream=self.keys.alerts,
            counter=self.keys.counter(self.keys.alerts),
            alert="",
            marker_ttl=0,
            maxlen=0,
            alert_id="",
            min_id="0",
        )

    def _publishing(self, alert: dict[str, Any]) -> ClaimPublishCall:
        """The call publishing `alert` without a claim."""
        body = json.dumps(alert, ensure_ascii=False, separators=(",", ":"))
        return ClaimPublishCall(
            marker=self.keys.alert_seen(alert["id"]),
            stream=self.keys.alerts_staged if self.hold else self.keys.alerts,
            counter=self.keys.counter(self.keys.alerts),
            alert=body,
            marker_ttl=self.id_ttl,
            maxlen=self.maxlen,
            alert_id=alert["id"],
            min_id=self._min_id(),
            staged=int(self.hold > 0),
        )

    def _min_id(self) -> str:
        """The oldest entry id the alerts stream keeps ('0': no age limit)."""
        return f"{int((time.time() - self.max_age) * 1000)}-0" if self.max_age else "0"

    def is_published(self, alert_id: str) -> bool:
        return bool(self.client.exists(self.keys.alert_seen(alert_id)))

    def published(self, alert_ids: list[str]) -> list[bool]:
        """Whether each alert id was published (one round trip)."""
        pipe = self.client.pipeline(transaction=False)
        for alert_id in alert_ids:
            pipe.exists(self.keys.alert_seen(alert_id))
        return [bool(n) for n in pipe.execute()] if alert_ids else []

    def read(self, *, start: str = "-", count: int | None = None) -> Iterator[Delivered]:
        """Alerts in stream order from `start` (inclusive), without a consumer group."""
        batch = 500
        remaining = count
        while remaining is None or remaining > 0:
            size = batch if remaining is None else min(batch, remaining)
            entries = self.client.xrange(self.keys.alerts, min=start, count=size)
            for entry_id, fields in entries:
                yield Delivered(entry_id, json.loads(fields[ALERT_FIELD]))
            if remaining is not None:
                remaining -= len(entries)
            if len(entries) < size:
                return
            start = "(" + entries[-1][0]

    def last_id(self) -> str:
        info = (
            self.client.xinfo_stream(self.keys.alerts)
            if self.client.exists(self.keys.alerts)
            else None
        )
        return info["last-generated-id"] if info else "0-0"

    def latest(self, count: int, *, containing: str = "") -> list[Delivered]:
        """The newest `count` alerts, newest first. `containing`: only those whose JSON
        holds that text at all are decoded (a cheap look before parsing)."""
        entries = self.client.xrevrange(self.keys.alerts, count=count)
        return [
            Delivered(entry_id, json.loads(fields[ALERT_FIELD]))
            for entry_id, fields in entries
            if containing in fields[ALERT_FIELD]
        ]

    def after(
        self, entry_id: str, *, count: int = 50, block_ms: int | None = None
    ) -> list[Delivered]:
        """The alerts after `entry_id` in stream order, at most `count`, waiting up to
        `block_ms` for one when there are none yet (None: not waiting)."""
        reply = self.client.xread({self.keys.alerts: entry_id}, count=count, block=block_ms)
        return [
            Delivered(eid, json.loads(fields[ALERT_FIELD])) for eid, fields in stream_entries(reply)
        ]
