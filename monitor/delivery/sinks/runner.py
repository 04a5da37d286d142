"""Delivering to sinks: one loop per sink, each in its own consumer group and thread, so a
sink that is slow or failing holds up only itself.

For each alert: a filter that does not take it -> acked, counted as filtered; a digest sink
-> kept in its window (monitor/delivery/sinks/digest.py), acked; otherwise sent, paced by the
sink's rate limit, tried `attempts` times with backoff (at least what Retry-After asks, up to
60 s), then acked (delivered), dead-lettered (a refusal that retrying will not change, while
the endpoint accepts other alerts) or left pending (handed out again after claim_idle, and
dead-lettered after max_deliveries). A sink that fails `trip_after` deliveries in a row is
paused (Breaker, below); without --follow it stops, its alerts waiting for the next run.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from redis.exceptions import LockError

from monitor.delivery.consumer import AlertConsumer, Delivery
from monitor.delivery.sinks.base import Attempt, Sink
from monitor.delivery.sinks.digest import DigestStore
from monitor.store.keys import Keys
from monitor.store.refusals import refusal

log = structlog.get_logger(__name__)

LAG_EVERY = 5.0  # seconds between lag measurements
MAX_PAUSE = 900.0  # the longest pause of a failing endpoint
TOLD_TTL = 14 * 86400  # seconds a sink remembers the reports of a story it has sent


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


class SinkMetrics:
    """Prometheus metrics of every sink of a process, labelled by sink."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = r = registry or CollectorRegistry()
        self.delivered = Counter(
            "monitor_sink_delivered", "Messages delivered", ["sink", "what"], registry=r
        )
        self.failed = Counter(
            "monitor_sink_failed", "Delivery attempts that failed", ["sink"], registry=r
        )
        self.filtered = Counter(
            "monitor_sink_filtered", "Alerts the sink's filter left out", ["sink"], registry=r
        )
        self.dead = Counter("monitor_sink_dead", "Alerts dead-lettered", ["sink"], registry=r)
        self.latency = Histogram(
            "monitor_sink_latency_seconds", "Time of one delivery attempt", ["sink"], registry=r
        )
        self.lag = Gauge(
            "monitor_sink_lag", "Alerts not yet read by the sink's group", ["sink"], registry=r
        )
        self.pending = Gauge(
            "monitor_sink_pending", "Alerts read but not yet acked", ["sink"], registry=r
        )


@dataclass
class Stats:
    delivered: int = 0
    failed: int = 0  # deliveries left pending or dead-lettered
    filtered: int = 0
    dead: int = 0
    kept: int = 0  # alerts kept for a digest
    digests: int = 0
    latencies: list[float] = field(default_factory=list)

    def line(self) -> str:
        parts = [f"{self.delivered} delivered"]
        for name in ("failed", "dead", "filtered", "kept", "digests"):
            if value := getattr(self, name):
                parts.append(f"{value} {'kept for a digest' if name == 'kept' else name}")
        if self.latencies:
            ordered = sorted(self.latencies)
            parts.append(f"median latency {ordered[len(ordered) // 2] * 1000:.0f} ms")
        return ", ".join(parts)


class SinkRunner:
    def __init__(
        self,
        sink: Sink,
        client: redis.Redis,
        *,
        prefix: str = "monitor:",
        consumer: str = "",
        members: AlertConsumer | None = None,  # a group member to use instead of a new one
        stop: threading.Event | None = None,
        metrics: SinkMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sink = sink
        self.config = config = sink.config
        self.name = config.name
        self.client = client
        self.prefix = prefix
        self.consumer_name = consumer
        if members is not None:
            self.consumer = members  # (sets the cached property)
        self.store = (
            DigestStore(client, Keys(prefix), config.name, config.digest) if config.digest else None
        )
        self.stop = stop or threading.Event()
        self.metrics = metrics or SinkMetrics()
        self.clock = clock
        self.breaker = Breaker(config.trip_after, config.pause)
        self.stats = Stats()
        self.error = ""  # why the sink stopped, without --follow
        self._accepted = False  # the previous delivery succeeded
        self._next_send = 0.0
        self._next_lag = 0.0
        self._next_due = 0.0

    @functools.cached_property
    def consumer(self) -> AlertConsumer:
        """The sink's member of its group (made on first use: --dry-run makes no group). A
        new group starts at the end of the stream, or with `start = "retained"` at its
        start."""
        if self.config.start == "now":
            with contextlib.suppress(redis.ResponseError):  # BUSYGROUP: it exists, as it is
                self.client.xgroup_create(
                    Keys(self.prefix).alerts, self.config.consumer_group, id="$", mkstream=True
                )
        return AlertConsumer(
            self.client,
            group=self.config.consumer_group,
            consumer=self.consumer_name,
            prefix=self.prefix,
            claim_idle=self.config.claim_idle,
            max_deliveries=self.config.max_deliveries,
        )

    # --- one alert ---------------------------------------------------------------------

    def handle(self, delivery: Delivery) -> Attempt | None:
        """Route, keep or send one alert; None when nothing was sent."""
        alert = delivery.value or {}
        if not self.config.filter.matches(alert):
            self.consumer.ack(delivery)
            self.stats.filtered += 1
            self.metrics.filtered.labels(self.name).inc()
            return None
        if self.store is not None:
            window = self.store.add(alert, self.clock())
            self.consumer.ack(delivery)  # kept in Redis first: at least once
            self.stats.kept += 1
            log.info("alert_kept", sink=self.name, alert=alert.get("id"), window=window)
            return None
        # (only a message for people says what changed: a webhook sends the document)
        story = (
            str((alert.get("story") or {}).get("id", "")) if self.config.type == "apprise" else ""
        )
        told = self._told(story) if alert.get("kind") == "update" and story else frozenset()
        attempt = self._deliver(lambda: self.sink.send_alert(alert, delivery.deliveries, told))
        if attempt.delivered:
            try:
                self._tell(story, alert)
            except redis.RedisError as exc:  # sent: it must be acked, not sent again
                if (found := refusal(exc)) is None:
                    raise
                log.warning("sink_told_unsaved", sink=self.name, reason=found.reason)
            self.consumer.ack(delivery)
            self.breaker.success()
            self.stats.delivered += 1
            self.metrics.delivered.labels(self.name, "alert").inc()
        elif attempt.final and self._accepted:
            self.consumer.dead_letter(delivery, attempt.detail)  # the group names the sink
            self.stats.dead += 1
            self.metrics.dead.labels(self.name).inc()
        else:
            self.stats.failed += 1
            self.consumer.retry(delivery, attempt.detail)
        self._accepted = attempt.delivered
        log.info(
            "alert_sent" if attempt.delivered else "alert_not_sent",
            sink=self.name,
            alert=alert.get("id"),
            detail=attempt.detail,
        )
        return attempt

    def _told(self, story: str) -> frozenset[str]:
        return frozenset(self.client.smembers(Keys(self.prefix).sink_told(self.name, story)))

    def _tell(self, story: str, alert: dict[str, Any]) -> None:
        """Remember which of the story's reports this sink has sent people (for updates)."""
        urls = [s["url"] for s in (alert.get("story") or {}).get("sources", []) if s.get("url")]
        if story and urls:
            key = Keys(self.prefix).sink_told(self.name, story)
            pipe = self.client.pipeline(transaction=False)
            pipe.sadd(key, *urls)
            pipe.expire(key, TOLD_TTL)
            pipe.execute()

    def _deliver(self, send: Callable[[], Attempt]) -> Attempt:
        attempt = Attempt(False, False, "stopped")
        wait = self.config.backoff
        for n in range(self.config.attempts):
            if n and self.stop.wait(wait):
                break
            if not self._pace():
                break
            started = time.monotonic()
            try:
                attempt = send()
            except Exception as exc:  # a sink's library failing is one failed attempt
                log.exception("sink_send_failed", sink=self.name)
                attempt = Attempt(False, False, f"{type(exc).__name__}: {exc}")
            elapsed = time.monotonic() - started
            self.metrics.latency.labels(self.name).observe(elapsed)
            self.stats.latencies.append(elapsed)
            if attempt.delivered or attempt.final:
                return attempt
            self.metrics.failed.labels(self.name).inc()
            wait = self.config.backoff * 2**n
            if attempt.retry_after is not None:
                wait = max(wait, min(attempt.retry_after, 60.0))
        return attempt

    def _pace(self) -> bool:
        """Wait for the rate limit: a send at least 60 / rate_per_minute s after the one
        before it (counted from when that one went, so a late send does not make the next
        one early); False if stopped meanwhile."""
        if not self.config.rate_per_minute:
            return True
        now = time.monotonic()
        if self._next_send > now and self.stop.wait(self._next_send - now):
            return False
        self._next_send = time.monotonic() + 60.0 / self.config.rate_per_minute
        return True

    # --- digests -----------------------------------------------------------------------

    def send_due(self) -> Attempt | None:
        """Send every digest window that has ended; the last failure, if any."""
        if self.store is None:
            return None
        now = self.clock()
        due = self.store.due(now)
        if not due:
            return None
        lock = self.store.lock()
        if not lock.acquire():
            return None  # another forwarder of this sink is sending them
        try:
            for start in due:
                if not self.store.still_waiting(start):
                    continue  # sent meanwhile by another forwarder
                window = self.store.window(start)
                attempt = self._deliver(functools.partial(self.sink.send_digest, window))
                if not attempt.delivered:
                    self.stats.failed += 1
                    log.warning(
                        "digest_not_sent", sink=self.name, window=start, detail=attempt.detail
                    )
                    return attempt
                self.store.mark_sent(window, self.clock())
                self.breaker.success()
                self.stats.digests += 1
                self.metrics.delivered.labels(self.name, "digest").inc()
                log.info("digest_sent", sink=self.name, window=start, alerts=len(window.alerts))
        finally:
            with contextlib.suppress(LockError):  # it expired during a long send
                lock.release()
        return None

    # --- the loop ----------------------------------------------------------------------

    def run(self, *, follow: bool, count: int | None = None) -> Stats:
        """Deliver until stopped (--follow) or until nothing is left; the figures."""
        try:
            if not follow:  # what is there now (AlertConsumer.drain), then the digests due
                if self._handle_all(self.consumer.drain(), follow, count):
                    self._send_digests(follow)
                return self.stats
            while not self.stop.is_set():
                batch = self.consumer.poll(block_ms=1000)
                if not self._handle_all(batch, follow, count):
                    break
                if not batch or time.monotonic() >= self._next_due:
                    self._next_due = time.monotonic() + 1.0  # (also while alerts keep coming)
                    if not self._send_digests(follow):
                        break
                self._measure_lag()
        finally:
            self._measure_lag(force=True)
        return self.stats

    def _handle_all(self, deliveries: Iterable[Delivery], follow: bool, count: int | None) -> bool:
        """Handle each; False when this sink is to stop (stopped, count reached, tripped)."""
        for delivery in deliveries:
            if self.stop.is_set():
                return False  # read but not sent: pending, delivered later
            attempt = self.handle(delivery)
            if attempt is not None and not attempt.delivered and not self._paused(attempt, follow):
                return False
            if count is not None and self.stats.delivered >= count:
                return False
        return True

    def _send_digests(self, follow: bool) -> bool:
        failed = self.send_due()
        return failed is None or self._paused(failed, follow)

    def _paused(self, attempt: Attempt, follow: bool) -> bool:
        """After a failure: go on (True) or stop this sink (False, without --follow)."""
        pause = self.breaker.failure()
        if pause is None:
            return True
        if not follow:
            self.error = (
                f"{self.breaker.failures} deliveries in a row failed (last: {attempt.detail}); "
                "stopped, the alerts stay pending for the next run"
            )
            return False
        log.warning(
            "endpoint_paused",
            sink=self.name,
            url=self.config.shown_url,
            failures=self.breaker.failures,
            detail=attempt.detail,
            seconds=pause,
        )
        if self.stop.wait(pause):
            return False
        log.info("endpoint_probed", sink=self.name, url=self.config.shown_url)  # the next alert
        return True

    def _measure_lag(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now >= self._next_lag:
            self._next_lag = now + LAG_EVERY
            lag, pending = self.consumer.lag()
            self.metrics.lag.labels(self.name).set(lag)
            self.metrics.pending.labels(self.name).set(pending)


def serve(runners: Sequence[SinkRunner], *, follow: bool, count: int | None = None) -> None:
    """Run every sink in a thread of its own until all are done (or stopped)."""

    def one(runner: SinkRunner) -> None:
        while True:
            try:
                runner.run(follow=follow, count=count)
                return
            except Exception as exc:  # the loop boundary: log, and go on if following
                if (found := refusal(exc)) is not None:  # Redis's, not the sink's: the
                    # alert in hand stays pending, delivered once Redis accepts again
                    problem = f"Redis refuses writes: {found.reason}"
                    log.error("sink_redis_refused", sink=runner.name, reason=found.reason)
                else:
                    problem = f"{type(exc).__name__}: {exc}"
                    log.exception("sink_error", sink=runner.name)
                if not follow or runner.stop.wait(5.0):
                    runner.error = runner.error or problem
                    return

    threads = [
        threading.Thread(target=one, args=(r,), name=f"sink-{r.name}", daemon=True) for r in runners
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.5)
