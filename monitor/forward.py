"""Forwarding alerts to a webhook: POST each alert's JSON, signed, acked only after a 2xx.

Signatures (documented in docs/consumers.md, made in monitor/sinks/webhook.py): with a
secret, the Standard Webhooks set (`webhook-id`, `webhook-timestamp`, `webhook-signature`)
and the earlier `X-Monitor-Timestamp: <unix seconds>` with `X-Monitor-Signature:
sha256=<hex>`, hex = HMAC-SHA256(secret, "<timestamp>." + body). The sinks of
`[[sinks]]` (monitor/sinks/) deliver the same way, with routing and digests.

Retries: network errors, 408, 429 and 5xx are retried with exponential backoff (honouring
Retry-After) up to `attempts` times, then left pending for a later delivery; any other
status is final and the alert goes to the dead letters — but only while the endpoint is
otherwise accepting alerts (the previous delivery succeeded). An endpoint that fails
`trip_after` deliveries in a row is the problem, not the alerts: a circuit breaker pauses it
(`pause` seconds, doubling up to 15 minutes, then one alert probes it), so a mistyped URL
answering 410 leaves the backlog pending instead of dead-lettering all of it.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from dataclasses import dataclass

import httpx
import structlog

from monitor.consumer import AlertConsumer, Delivery
from monitor.errors import MonitorError
from monitor.schedule import retry_after
from monitor.sinks.webhook import headers, legacy_signature

log = structlog.get_logger(__name__)

RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return legacy_signature(secret, timestamp, body)


def verify(
    secret: str, timestamp: str, body: bytes, signature: str, tolerance: float = 300
) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent."""
    try:
        fresh = abs(time.time() - float(timestamp)) <= tolerance
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature)


MAX_PAUSE = 900.0


class EndpointFailing(MonitorError):
    def __init__(self, url: str, failures: int, detail: str) -> None:
        super().__init__(
            f"{url}: {failures} deliveries in a row failed (last: {detail}); stopped, the "
            "alerts stay pending for the next run (--follow pauses and retries instead)"
        )


class Breaker:
    """Counts failed deliveries in a row; from `trip_after` on, each failure asks for a
    pause, doubling from `pause` up to MAX_PAUSE. A success closes it."""

    def __init__(self, trip_after: int, pause: float) -> None:
        self.trip_after = max(1, trip_after)
        self.first_pause = pause
        self.next_pause = pause
        self.failures = 0

    def success(self) -> None:
        self.failures = 0
        self.next_pause = self.first_pause

    def failure(self) -> float | None:
        """The pause to make now, or None."""
        self.failures += 1
        if self.failures < self.trip_after:
            return None
        pause, self.next_pause = self.next_pause, min(MAX_PAUSE, self.next_pause * 2)
        return pause


@dataclass(frozen=True, slots=True)
class Outcome:
    delivered: bool
    final: bool  # not delivered, and retrying will not help
    detail: str


class Forwarder:
    def __init__(
        self,
        consumer: AlertConsumer,
        url: str,
        *,
        secret: str = "",
        timeout: float = 10.0,
        attempts: int = 4,
        backoff: float = 0.5,
        trip_after: int = 5,
        pause: float = 30.0,
        stop: threading.Event | None = None,
    ) -> None:
        self.consumer = consumer
        self.url = url
        self.secret = secret
        self.attempts = attempts
        self.backoff = backoff
        self.stop = stop or threading.Event()
        self.client = httpx.Client(timeout=timeout, follow_redirects=False)
        self.breaker = Breaker(trip_after, pause)
        self._accepted = False  # the previous delivery succeeded
        self.dead = 0  # dead-lettered in this run

    def close(self) -> None:
        self.client.close()

    def handle(self, delivery: Delivery) -> Outcome:
        """Post one alert (with retries); ack, leave pending or dead-letter it."""
        outcome = self._post(delivery)
        if outcome.delivered:
            self.consumer.ack(delivery)
            self.breaker.success()
        elif outcome.final and self._accepted:
            self.consumer.dead_letter(delivery, outcome.detail)  # this alert, not the endpoint
            self.dead += 1
        else:
            self.consumer.retry(delivery, outcome.detail)
        self._accepted = outcome.delivered
        log.info("alert_forwarded" if outcome.delivered else "alert_not_forwarded",
                 alert=(delivery.value or {}).get("id"), detail=outcome.detail)  # fmt: skip
        return outcome

    def _post(self, delivery: Delivery) -> Outcome:
        body = json.dumps(delivery.value, ensure_ascii=False, separators=(",", ":")).encode()
        detail = "stopped"
        wait = self.backoff
        for attempt in range(self.attempts):
            if attempt and self.stop.wait(wait):
                break
            wait = self.backoff * 2**attempt
            try:
                response = self.client.post(
                    self.url, content=body, headers=self._headers(delivery, body)
                )
            except httpx.HTTPError as exc:
                detail = f"{type(exc).__name__}: {exc}"
                continue
            detail = f"HTTP {response.status_code}"
            if 200 <= response.status_code < 300:
                return Outcome(True, False, detail)
            if response.status_code not in RETRYABLE:
                return Outcome(False, True, detail)
            hinted = retry_after(response.headers.get("retry-after"))
            if hinted is not None:
                wait = max(wait, min(hinted, 60.0))
        return Outcome(False, False, detail)

    def _headers(self, delivery: Delivery, body: bytes) -> dict[str, str]:
        alert_id = str((delivery.value or {}).get("id", ""))
        return headers(alert_id, delivery.deliveries, body, self.secret)

    def run(self, *, follow: bool, count: int | None = None) -> int:
        """Forward alerts; returns how many were delivered."""
        delivered = 0
        source = self.consumer.follow(self.stop) if follow else self.consumer.drain()
        for delivery in source:
            if self.stop.is_set():
                break  # what was read but not posted stays pending: delivered later
            outcome = self.handle(delivery)
            if outcome.delivered:
                delivered += 1
            elif (pause := self.breaker.failure()) is not None:
                if not follow:
                    raise EndpointFailing(self.url, self.breaker.failures, outcome.detail)
                log.warning("endpoint_paused", url=self.url, failures=self.breaker.failures,
                            detail=outcome.detail, seconds=pause)  # fmt: skip
                if self.stop.wait(pause):
                    break
                log.info("endpoint_probed", url=self.url)  # the next alert tries it
            if count is not None and delivered >= count:
                break
        return delivered
