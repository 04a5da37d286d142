"""Consuming alerts from Python: a member of a consumer group on `monitor:alerts`.

    from monitor.consumer import AlertConsumer

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
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import redis
import structlog

from monitor.keys import Keys
from monitor.queue import Entry, StreamGroup, connect

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
            client, keys.alerts, group, field="alert", decode=json.loads,
            dead_stream=keys.alerts_dead,
        )  # fmt: skip
        self.name = consumer or f"{socket.gethostname()}-{threading.get_native_id()}"
        self.claim_idle = claim_idle
        self.max_deliveries = max_deliveries
        self.batch = batch
        self._next_claim = 0.0
        self.group.ensure_group()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> AlertConsumer:
        return cls(connect(url), **options)

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
            batch = self.group.read(self.name, count=self.batch, block_ms=block_ms)
        return self._ready(batch)

    def follow(self, stop: threading.Event | None = None) -> Iterator[Delivery]:
        """Alerts as they come, until `stop` is set (or forever)."""
        while stop is None or not stop.is_set():
            yield from self.poll(block_ms=1000)

    def drain(self) -> Iterator[Delivery]:
        """Alerts available now — every pending one due for another delivery, then every
        new one — and then stop."""
        self.group.rewind()
        while True:  # one pass over the pending list: what this drain re-claimed stays out
            yield from self._ready(self._claim())
            if self.group.rewound:
                break
        while batch := self.group.read(self.name, count=self.batch):
            yield from self._ready(batch)

    def _claim(self) -> list[Delivery]:
        return self.group.claim_stale(
            self.name, min_idle_ms=int(self.claim_idle * 1000), count=self.batch
        )

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
        self.group.ack(delivery.entry_id)

    def retry(self, delivery: Delivery, reason: str) -> None:
        """Leave it pending: it is handed out again after `claim_idle`."""
        log.warning("alert_retry", entry=delivery.entry_id, deliveries=delivery.deliveries,
                    reason=reason, group=self.group.group)  # fmt: skip

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        log.error("alert_dead", entry=delivery.entry_id, reason=reason, group=self.group.group)
        self.group.dead_letter(delivery, reason, consumer=self.name)

    def lag(self) -> tuple[int, int]:
        return self.group.lag()


def dead_letters(client: redis.Redis, prefix: str = "monitor:") -> Iterator[dict[str, Any]]:
    """The dead-letter stream, oldest first: alert, reason, group, consumer, deliveries."""
    for entry_id, fields in client.xrange(Keys(prefix).alerts_dead):
        try:
            alert = json.loads(fields.get("alert", "null"))
        except ValueError:
            alert = fields.get("alert")
        yield {"entry": entry_id, **fields, "alert": alert}
