"""Consuming alerts from Python: a member of a consumer group on `monitor:alerts`.

    from monitor.delivery.consumer import AlertConsumer

    consumer = AlertConsumer.from_url("redis://localhost:6379/0", group="tickets")
    for delivery in consumer.follow():
        try:
            open_ticket(delivery.value)  # the alert, a dict (docs/alert.schema.json)
        except Exception as exc:
            consumer.retry(delivery, str(exc))  # handed out again after claim_idle
        else:
            consumer.ack(delivery)

Delivery is at least once per group: an alert stays pending until acked; one left pending
(a failure, or a consumer that died) is handed out again after `claim_idle` seconds, to any
member; after `max_deliveries` it is moved to `monitor:alerts:dead` with the reason. Alert
ids are stable, so a consumer that must not act twice keeps the ids it has handled.
Dead letters put back with `requeue` (`monitor consume --requeue`) go to a stream of their
group's own, `monitor:alerts:requeued:<group>`, which its members read first.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Collection, Iterator
from typing import Any

import redis
import structlog

from monitor.delivery.queue import ALERT_FIELD
from monitor.errors import MonitorError
from monitor.store.connection import connect
from monitor.store.keys import Keys
from monitor.store.streams import Entry, StreamGroup

log = structlog.get_logger(__name__)

Delivery = Entry[dict[str, Any]]


class AlertConsumer:
    def __init__(
        self,
        client: redis.Redis,
        *,
        group: str,
        consumer: str = "",
        prefix: str = "monitor:",
        claim_idle: float = 60.0,
        max_deliveries: int = 5,
        batch: int = 10,
    ) -> None:
        if not group:
            raise ValueError("a consumer group name is required")
        keys = Keys(prefix)
        self.group = StreamGroup[dict[str, Any]](
            client,
            keys.alerts,
            group,
            field=ALERT_FIELD,
            decode=json.loads,
            dead_stream=keys.alerts_dead,
        )
        self.requeued = StreamGroup[dict[str, Any]](
            client,
            keys.alerts_requeued(group),
            group,
            field=ALERT_FIELD,
            decode=json.loads,
            dead_stream=keys.alerts_dead,
        )
        self.client = client
        self.name = consumer or f"{socket.gethostname()}-{threading.get_native_id()}"
        self.claim_idle = claim_idle
        self.max_deliveries = max_deliveries
        self.batch = batch
        self._next_claim = 0.0
        self.group.ensure_group()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> AlertConsumer:
        return cls(connect(url), **options)

    def close(self) -> None:
        """Close the connections (an embedded Redis stops only once no client is left)."""
        self.client.close()

    def poll(self, block_ms: int | None = None) -> list[Delivery]:
        """The next alerts for this member: stale ones first, then new ones (waiting up to
        `block_ms` for them). Alerts delivered too often are dead-lettered, not returned."""
        now = time.monotonic()
        batch: list[Delivery] = []
        if now >= self._next_claim:
            batch = self._claim()
            if not batch:
                self._next_claim = now + min(self.claim_idle / 2, 5.0)
        if not batch:
            batch = self._read_requeued()
        if not batch:
            batch = self.group.read(self.name, count=self.batch, block_ms=block_ms)
        return self._ready(batch)

    def follow(self, stop: threading.Event | None = None) -> Iterator[Delivery]:
        """Alerts as they come, until `stop` is set (or forever)."""
        while stop is None or not stop.is_set():
            yield from self.poll(block_ms=1000)

    def drain(self) -> Iterator[Delivery]:
        """Alerts available now — every pending one due for another delivery, then every
        new one — and then stop."""
        for group in (self.requeued, self.group):
            group.rewind()
            while True:  # one pass over each pending list: what it re-claimed stays out
                yield from self._ready(self._claim_from(group))
                if group.rewound:
                    break
        while batch := self._read_requeued() or self.group.read(self.name, count=self.batch):
            yield from self._ready(batch)

    def _claim(self) -> list[Delivery]:
        return self._claim_from(self.requeued) or self._claim_from(self.group)

    def _claim_from(self, group: StreamGroup[dict[str, Any]]) -> list[Delivery]:
        idle = int(self.claim_idle * 1000)
        try:
            return group.claim_stale(self.name, min_idle_ms=idle, count=self.batch)
        except redis.ResponseError as exc:
            if group is not self.requeued or "NOGROUP" not in str(exc):
                raise
            return []  # nothing was ever requeued for this group

    def _read_requeued(self) -> list[Delivery]:
        try:
            return self.requeued.read(self.name, count=self.batch)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            return []

    def _stream(self, delivery: Delivery) -> StreamGroup[dict[str, Any]]:
        return self.requeued if "requeued" in delivery.raw else self.group

    def _ready(self, batch: list[Delivery]) -> list[Delivery]:
        ready = []
        for delivery in batch:
            if delivery.value is None:
                self.dead_letter(delivery, "not a JSON alert")
            elif delivery.deliveries > self.max_deliveries:
                self.dead_letter(delivery, f"delivered {delivery.deliveries} times")
            else:
                ready.append(delivery)
        return ready

    def ack(self, delivery: Delivery) -> None:
        self._stream(delivery).ack(delivery.entry_id)

    def retry(self, delivery: Delivery, reason: str) -> None:
        """Leave it pending: it is handed out again after `claim_idle`."""
        log.warning(
            "alert_retry",
            entry=delivery.entry_id,
            deliveries=delivery.deliveries,
            reason=reason,
            group=self.group.group,
        )

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        log.error("alert_dead", entry=delivery.entry_id, reason=reason, group=self.group.group)
        self._stream(delivery).dead_letter(delivery, reason, consumer=self.name)

    def lag(self) -> tuple[int, int]:
        return self.group.lag()


def dead_letters(client: redis.Redis, prefix: str = "monitor:") -> Iterator[dict[str, Any]]:
    """The dead-letter stream, oldest first: alert, reason, group, consumer, deliveries."""
    for entry_id, fields in client.xrange(Keys(prefix).alerts_dead):
        try:
            alert = json.loads(fields.get(ALERT_FIELD, "null"))
        except ValueError:
            alert = fields.get(ALERT_FIELD)
        yield {"entry": entry_id, **fields, "alert": alert}


class UnknownDeadLetter(MonitorError):
    def __init__(self, ids: Collection[str]) -> None:
        super().__init__(
            f"no dead letter {', '.join(sorted(ids))} (entry or alert ids: monitor consume --dead)"
        )


def requeue(
    client: redis.Redis,
    prefix: str = "monitor:",
    *,
    ids: Collection[str] | None = None,
    group: str | None = None,
) -> list[dict[str, Any]]:
    """Put dead letters back, each for the group it was dead-lettered from (only `group`'s
    letters if given): `ids` are entry ids (as `monitor consume --dead` lists them, or of the
    dead-letter stream) or alert ids, None means all. Each
    letter moves in one transaction; returns the letters moved."""
    keys = Keys(prefix)
    wanted = set(ids) if ids is not None else None
    chosen = [
        (entry_id, fields)
        for entry_id, fields in client.xrange(keys.alerts_dead)
        if fields.get("group")
        and (not group or fields["group"] == group)
        and (wanted is None or _names(entry_id, fields) & wanted)
    ]
    unknown = (wanted or set()).difference(*(_names(e, f) for e, f in chosen))
    if unknown:
        raise UnknownDeadLetter(unknown)  # before moving anything
    for entry_id, fields in chosen:
        stream = keys.alerts_requeued(fields["group"])
        try:
            client.xgroup_create(stream, fields["group"], id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        pipe = client.pipeline(transaction=True)
        pipe.xadd(
            stream,
            {
                "id": fields.get("id", ""),
                ALERT_FIELD: fields.get(ALERT_FIELD, ""),
                "requeued": entry_id,
            },
        )
        pipe.xdel(keys.alerts_dead, entry_id)
        pipe.execute()
    return [{"entry": entry_id, **fields} for entry_id, fields in chosen]


def _names(dead_entry: str, fields: dict[str, str]) -> set[str]:
    """What a dead letter can be named by: its own entry id, the alert's entry id in the
    alerts stream, the alert id."""
    return {dead_entry, fields.get("entry", ""), fields.get("id", "")} - {""}
