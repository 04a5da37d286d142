"""The processing loop: read the items stream as a member of the `processors` group —
first what this consumer held when it stopped, then what dead daemons held, then stale
entries, then new ones — fetch a batch's pages concurrently, process the items one by one
(trafilatura only ever runs in this thread) and ack each after its alerts are published."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import redis
import structlog

from monitor.config import Settings
from monitor.daemon.health import PROCESSING, Health
from monitor.daemon.metrics import Metrics
from monitor.errors import FetchError, MonitorError
from monitor.ingest.fetch import HttpFetcher, Page
from monitor.ingest.items import ItemsQueue
from monitor.model import Item
from monitor.pipeline.process import Pipeline, Processed
from monitor.store.connection import UNAVAILABLE
from monitor.store.keys import Keys
from monitor.store.redisguard import EvictionWatch
from monitor.store.refusals import refusal
from monitor.store.retention import GroupLag, stream_groups
from monitor.store.streams import Entry

log = structlog.get_logger("monitor.daemon")
RETRY_FIRST, RETRY_EVERY = 0.5, 2.0  # seconds between tries while Redis is away

HEARTBEAT_EVERY = 10.0
RETENTION_WARN_EVERY = 300.0  # seconds between two warnings about one group's retention
WRITE_PROBE_EVERY = 1.0  # seconds between write attempts while Redis refuses writes
AFTER_LOOP_ERROR = 2.0  # seconds of pause after an unexpected error in the loop


class Worker:
    def __init__(
        self,
        settings: Settings,
        client: redis.Redis,
        *,
        instance: str,
        items: ItemsQueue,
        pipeline: Pipeline,
        fetcher: HttpFetcher,
        metrics: Metrics,
        health: Health,
        heartbeat: Callable[[], None],
        housekeeping: Callable[[], None],
        alive: Callable[[str | None], bool],
    ) -> None:
        """`heartbeat` writes this daemon's heartbeat; `housekeeping` runs every
        daemon.rules_check (rules reload, feed list); `alive` tells a running daemon's
        heartbeat from a dead one's."""
        self.settings = settings
        self.client = client
        self.keys = Keys(settings.prefix)
        self.instance = instance
        self.items = items
        self.pipeline = pipeline
        self.fetcher = fetcher
        self.metrics = metrics
        self.health = health
        self.heartbeat = heartbeat
        self.housekeeping = housekeeping
        self.alive = alive
        self.evictions = EvictionWatch(client)
        self.page_pool = ThreadPoolExecutor(max(2, settings.daemon.batch), "page")
        self.due = False  # housekeeping asked for now (SIGHUP)
        self.next_beat = 0.0
        self._retention_warned: dict[tuple[str, str], float] = {}

    def shutdown(self) -> None:
        self.page_pool.shutdown(wait=False, cancel_futures=True)

    def loop(self) -> None:
        cfg = self.settings.daemon
        health = self.health
        next_claim = 0.0
        next_rules = time.monotonic() + cfg.rules_check
        own = True  # first what this consumer name held when it last stopped, in order
        orphans, next_orphans = True, 0.0  # then what dead daemons held, in order
        retry = RETRY_FIRST  # after Redis was away: soon (a cluster's failover), then every 2 s
        while not health.stop.is_set():
            now = health.tick()
            try:
                refused = PROCESSING in health.refused_in
                if refused:  # nothing else until a write succeeds
                    self.heartbeat()
                    # Take back what this daemon held, at once and at full speed, then
                    # what dead daemons left (not at the claim trickle).
                    own, orphans, next_claim = True, True, 0.0
                    self.next_beat = now + HEARTBEAT_EVERY
                if now >= self.next_beat:
                    self.beat()
                    self.metrics.evicted.inc(self.evictions.check())
                    self.check_retention()
                if self.due or now >= next_rules:
                    self.due = False
                    self.housekeeping()
                    next_rules = now + cfg.rules_check
                batch: list[Entry[Item]] = []
                if own:
                    batch = self.items.take_own(self.instance, count=cfg.batch)
                    own = bool(batch)
                if not batch and (orphans or now >= next_orphans):
                    # Dead daemons' items before new ones, in stream order: after a crash
                    # (and a Redis roll-back) the same reports found the same stories.
                    batch = self.items.take_from(
                        self.instance, self.dead_members(), count=cfg.batch
                    )
                    orphans = bool(batch)
                    next_orphans = now + HEARTBEAT_EVERY
                if not batch and now >= next_claim:
                    batch = self.items.claim_stale(
                        self.instance, min_idle_ms=int(cfg.claim_idle * 1000), count=cfg.batch
                    )
                    next_claim = now + max(1.0, cfg.claim_idle / 2)
                if not batch:
                    batch = self.items.read(self.instance, count=cfg.batch, block_ms=1000)
                self.handle(batch)
                if refused:  # cleared once the items go through too, not on the heartbeat
                    # alone: a small write may pass where an item's is refused again
                    health.writable_again(PROCESSING)
                retry = RETRY_FIRST
            except UNAVAILABLE as exc:
                log.error("redis_unavailable", error=str(exc), retry_in=retry)
                health.stop.wait(retry)
                retry = min(RETRY_EVERY, retry * 2)
                own = True  # back: first what this daemon held
            except Exception as exc:  # the loop boundary: nothing may end the daemon
                if (found := refusal(exc)) is not None:  # not the items': they stay ours
                    if found.writes_refused:
                        health.write_refused(found.reason, exc)
                    else:  # passes by itself (a script loaded again, a slot moved)
                        log.warning("redis_refused", reason=found.reason, retry_in=RETRY_EVERY)
                        own = True
                    health.stop.wait(WRITE_PROBE_EVERY if found.writes_refused else RETRY_EVERY)
                    continue
                log.exception("loop_error", error=str(exc))
                health.stop.wait(AFTER_LOOP_ERROR)

    def beat(self) -> None:
        """The heartbeat, now; the next in HEARTBEAT_EVERY."""
        self.heartbeat()
        self.next_beat = time.monotonic() + HEARTBEAT_EVERY

    def _beat_if_due(self) -> None:
        """A daemon busy with one slow item still beats: other daemons must not take it for
        dead and claim its items."""
        if time.monotonic() >= self.next_beat:
            self.beat()

    def check_retention(self) -> list[GroupLag]:
        """Lag of every group of the alerts and items streams, as metrics; a warning (at
        most every RETENTION_WARN_EVERY per group) for those within 20% of the retention."""
        found = stream_groups(self.client, self.settings)
        m = self.metrics
        for gauge in (m.group_lag, m.group_pending, m.group_age, m.group_used):
            gauge.clear()  # groups deleted meanwhile go away
        now = time.monotonic()
        for g in found:
            m.group_lag.labels(g.stream, g.group).set(g.lag)
            m.group_pending.labels(g.stream, g.group).set(g.pending)
            m.group_age.labels(g.stream, g.group).set(round(g.oldest_age, 1))
            m.group_used.labels(g.stream, g.group).set(round(g.used, 3))
            warned = self._retention_warned.get((g.stream, g.group), -RETENTION_WARN_EVERY)
            if g.at_risk and now - warned >= RETENTION_WARN_EVERY:
                self._retention_warned[(g.stream, g.group)] = now
                log.warning(
                    "group_near_retention",
                    stream=g.stream,
                    group=g.group,
                    lag=g.lag,
                    pending=g.pending,
                    behind=g.behind,
                    oldest_s=round(g.oldest_age),
                    used=round(g.used, 3),
                    lost=g.lost or None,
                )
        trimmed, self.items.trimmed = self.items.trimmed, 0
        m.items_trimmed.inc(trimmed)
        return found

    def handle(self, batch: list[Entry[Item]]) -> None:
        if not batch:
            return
        limit = self.settings.daemon.max_deliveries
        ready = []
        for queued in batch:
            if queued.value is None:
                self.items.dead_letter(queued, "undecodable entry")
                self.metrics.dead.inc()
            elif queued.deliveries > limit:
                log.error("item_dead", item=queued.value.id, deliveries=queued.deliveries)
                self.items.dead_letter(queued, f"delivered {queued.deliveries} times")
                self.metrics.dead.inc()
            else:
                ready.append(queued)
        pages = {
            q.entry_id: self.page_pool.submit(_fetch, self.fetcher, q.value.url)
            for q in ready
            if q.value is not None and self.pipeline.needs_page(q.value)
        }
        health = self.health
        held = []
        for queued in ready:
            page = self._page(pages.get(queued.entry_id))
            if health.stop.is_set():
                break  # the rest stay pending: another daemon (or we, restarted) re-claims them
            held.append((queued, page))
        self._one_by_one(held)

    def _one_by_one(self, held: list[tuple[Entry[Item], Page | MonitorError | None]]) -> None:
        health = self.health
        for queued, page in held:
            if health.stop.is_set():
                break
            assert queued.value is not None
            health.tick()
            self._beat_if_due()
            started = time.perf_counter()
            try:
                result = self.pipeline.process(queued.value, page)
            except UNAVAILABLE:
                raise  # not the item's fault: the loop waits for Redis
            except Exception as exc:  # a loop boundary: left pending, retried, then dead
                if refusal(exc) is not None:
                    raise  # not the item's fault either: the batch stays ours, pending
                log.exception("item_failed", item=queued.value.id, error=str(exc))
                self.metrics.failed.inc()
                health.failures_in_a_row += 1
                continue
            self._done(queued, result, time.perf_counter() - started)

    def _done(self, queued: Entry[Item], result: Processed, seconds: float) -> None:
        """Ack a processed item (its alerts are published) and count it."""
        self.health.failures_in_a_row = 0
        self.items.ack(queued.entry_id)
        self.metrics.latency.observe(seconds)
        self.metrics.processed.labels(str(result.placement.outcome)).inc()
        self.metrics.alerts.inc(len(result.alerts))
        if result.is_same_item:
            self.metrics.folded.inc()
        if result.alert_suppressed and result.matches:
            reason = "too_old" if result.alert_suppressed.startswith("older") else "undated"
            self.metrics.suppressed.labels(reason).inc()
        if result.warnings:
            self.metrics.no_page.inc()

    def _page(self, future: Future[Page | MonitorError] | None) -> Page | MonitorError | None:
        """The prefetched page, waiting for it only while the daemon is not stopping, and
        no longer than a fetch may take (a server trickling its headers can hold a thread
        longer: the item then goes on with its feed text)."""
        http = self.settings.http
        deadline = time.monotonic() + http.connect_timeout + 2 * http.read_timeout + 5
        while future is not None and not self.health.stop.is_set():
            self.health.tick()  # waiting on a page is the loop turning
            self._beat_if_due()
            try:
                return future.result(timeout=0.2)
            except FutureTimeout:
                if time.monotonic() > deadline:
                    return FetchError("page", "no answer within the fetch deadline")
        return None

    def dead_members(self) -> list[str]:
        """Members of the items group that are gone: no heartbeat, or one from this host
        whose process no longer exists (a daemon killed a moment ago, whose heartbeat has
        not expired yet). Those holding nothing are removed from the group."""
        members = {n: p for n, p in self.items.consumers().items() if n != self.instance}
        if not members:
            return []
        pipe = self.client.pipeline(transaction=False)  # not MGET: one slot each on a cluster
        for name in members:
            pipe.get(self.keys.daemon(name))
        beats = pipe.execute()
        dead = [name for name, beat in zip(members, beats, strict=True) if not self.alive(beat)]
        self.items.forget(*(name for name in dead if not members[name]))
        return [name for name in dead if members[name]]


def _fetch(fetcher: HttpFetcher, url: str) -> Page | MonitorError:
    try:
        return fetcher.fetch(url)
    except MonitorError as exc:
        return exc


def alive(beat: str | None, pid_space: str) -> bool:
    """Whether a heartbeat is that of a running daemon (`pid_space`: this host and PID
    namespace, where a heartbeat's pid can be checked)."""
    if beat is None:
        return False
    try:
        info = json.loads(beat)
        if info.get("host") != pid_space:
            return True  # another host or container: its heartbeat's expiry tells
        os.kill(int(info["pid"]), 0)
    except ProcessLookupError:
        return False
    except (ValueError, TypeError, KeyError, PermissionError, AttributeError):
        return True  # unreadable, or another user's process: assume alive
    return True
