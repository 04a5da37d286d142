"""Redis Streams: the alerts stream and its consumers.

Publishing is idempotent: an alert id is published at most once while its marker key
lives (`alert_id_ttl_days`), so a re-delivered item or a second replay adds nothing.
An alert's claim (which item raises `new` or update n for a story and rule), its marker and
its XADD happen in one Lua script: no crash can leave a claim without its alert.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
import structlog

from monitor.errors import MonitorError
from monitor.model import AlertKind
from monitor.store.keys import Keys
from monitor.store.scripts import script
from monitor.store.streams import stream_entries

T = TypeVar("T")
log = structlog.get_logger(__name__)

_CLAIM_PUBLISH = script("claim_publish", "monitor.delivery")
ASK = -2  # the claim argument that only asks
# The field of an alerts-stream entry (and of its dead letters) holding the alert's JSON;
# claim_publish.lua writes it under this name.
ALERT_FIELD = "alert"


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
    story for one rule."""

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
    ) -> None:
        self.client = client
        self.keys = keys
        self.maxlen = maxlen
        self.id_ttl = id_ttl
        self.max_age = max_age
        self.claim_ttl = id_ttl if claim_ttl is None else claim_ttl
        self.quiet = quiet
        self._script = client.register_script(_CLAIM_PUBLISH)

    def publish(self, alert: dict[str, Any]) -> str | None:
        """Append the alert unless its id was published before; the entry id, or None."""
        _, entry = self._script(keys=self._keys(alert["id"]), args=self._args(alert))
        return str(entry) if entry else None

    def claim_and_publish(
        self,
        story_id: str,
        rule_id: str,
        item_id: str,
        build: Callable[[AlertKind, int], dict[str, Any]],
        *,
        at: float | None = None,
        guess: int | None = None,
    ) -> tuple[dict[str, Any], str | None] | None:
        """Claim the alert this item raises for (story, rule), if any, and publish it, in
        one step: the first matching item of a story claims `new`; a later one claims update
        number n when the story's last alert for the rule is at least `quiet` seconds older
        than `at`; others nothing (None). The same item always gets the same claim, so a
        re-delivered item re-publishes the same alert id (a no-op once published). Returns
        the alert built by `build(kind, update)` and its entry id (None: already there).
        `guess`: the claim to build first without asking (0 for the first report of a new
        story: one round trip instead of two when right; a wrong guess writes nothing)."""
        now = time.time() if at is None else at
        claim_args = [rule_id, item_id, self.claim_ttl, now, self.quiet]
        keys = [self.keys.story_alerts(story_id)]
        if guess is None:
            claim, _ = self._script(
                keys=[*self._keys(""), *keys], args=["", 0, 0, "", "0", *claim_args, ASK]
            )
        else:
            claim = guess
        for _attempt in range(5):
            if claim < 0:
                return None
            kind = AlertKind.NEW if claim == 0 else AlertKind.UPDATE
            alert = build(kind, int(claim))
            actual, entry = self._script(
                keys=[*self._keys(alert["id"]), *keys],
                args=[*self._args(alert), *claim_args, claim],
            )
            if actual == claim:
                return alert, (str(entry) if entry else None)
            claim = actual  # another daemon claimed meanwhile: build what is left, again
        raise ClaimRace(f"story {story_id}, rule {rule_id}: the claim kept changing")

    def _keys(self, alert_id: str) -> list[str]:
        return [
            self.keys.alert_seen(alert_id),
            self.keys.alerts,
            self.keys.counter(self.keys.alerts),
        ]

    def _args(self, alert: dict[str, Any]) -> list[Any]:
        body = json.dumps(alert, ensure_ascii=False, separators=(",", ":"))
        min_id = f"{int((time.time() - self.max_age) * 1000)}-0" if self.max_age else "0"
        return [body, self.id_ttl, self.maxlen, alert["id"], min_id]

    def is_published(self, alert_id: str) -> bool:
        return bool(self.client.exists(self.keys.alert_seen(alert_id)))

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
