"""`monitor forward --webhook URL`: one webhook sink, in the consumer group given (default
`webhook`), without a monitor.toml. It is the sinks' own loop (monitor/delivery/sinks/runner.py)
with a webhook sink (monitor/delivery/sinks/webhook.py); this module keeps its Python interface.

Signatures (documented in docs/consumers.md, made in monitor/delivery/sinks/webhook.py): with a
secret, the Standard Webhooks set (`webhook-id`, `webhook-timestamp`, `webhook-signature`)
and the earlier `X-Monitor-Timestamp: <unix seconds>` with `X-Monitor-Signature:
sha256=<hex>`, hex = HMAC-SHA256(secret, "<timestamp>." + body). The sinks of
`[[sinks]]` (monitor/delivery/sinks/) deliver the same way, with routing and digests.

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
import threading
import time

from monitor.delivery.consumer import AlertConsumer, Delivery
from monitor.delivery.sinks.base import Attempt
from monitor.delivery.sinks.runner import MAX_PAUSE, Breaker, SinkRunner
from monitor.delivery.sinks.webhook import RETRYABLE, WebhookSink, legacy_signature
from monitor.errors import MonitorError
from monitor.sinkconfig import SinkConfig

__all__ = ["MAX_PAUSE", "RETRYABLE", "Breaker", "EndpointFailing", "Forwarder", "sign", "verify"]


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


class EndpointFailing(MonitorError):
    def __init__(self, url: str, detail: str) -> None:
        super().__init__(f"{url}: {detail} (--follow pauses and retries instead)")


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
        self.url = url
        self.consumer = consumer
        config = SinkConfig(
            name="webhook",
            type="webhook",
            url=url,
            secret=secret,
            timeout=timeout,
            attempts=attempts,
            backoff=backoff,
            trip_after=trip_after,
            pause=pause,
            claim_idle=consumer.claim_idle,
            max_deliveries=consumer.max_deliveries,
        )
        self.sink = WebhookSink(config)
        self.runner = SinkRunner(self.sink, consumer.group.client, members=consumer, stop=stop)

    @property
    def dead(self) -> int:
        """Dead-lettered in this run."""
        return self.runner.stats.dead

    def close(self) -> None:
        self.sink.close()

    def handle(self, delivery: Delivery) -> Attempt | None:
        """Post one alert (with retries); ack, leave pending or dead-letter it."""
        return self.runner.handle(delivery)

    def run(self, *, follow: bool, count: int | None = None) -> int:
        """Forward alerts; returns how many were delivered."""
        stats = self.runner.run(follow=follow, count=count)
        if self.runner.error:
            raise EndpointFailing(self.url, self.runner.error)
        return stats.delivered
