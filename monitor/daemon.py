"""`monitor run`: the long-running daemon.

Threads: APScheduler's pool polls feeds (one date job per feed, rescheduled after each
poll) and appends new entries to the items stream; the main thread reads that stream as a
member of the `processors` group, fetches a batch's pages concurrently, then extracts and
processes the items one by one (trafilatura is only ever called from this thread), and
acks each item after its alerts are published. A small HTTP server serves /healthz and
/metrics.

Several daemons on one Redis share the work: a per-feed lease and the feed's stored next
poll time make each feed polled once per interval; the consumer group gives each item to
one daemon; items left pending by a daemon that died are re-claimed (XAUTOCLAIM).

Signals: SIGTERM/SIGINT stop polling, finish the item in hand, and exit 0 (items read but
not started stay pending and are re-claimed); a second signal exits at once. SIGHUP
reloads the rules (so does a change seen by the periodic check); a broken rule set is
logged and the previous one keeps running.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import redis
import structlog
from apscheduler.executors.pool import ThreadPoolExecutor as JobPool
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from monitor import backfill, runtime
from monitor.config import FeedConfig, Settings
from monitor.errors import FetchError, ListenError, MonitorError
from monitor.fetch import HttpFetcher, Page
from monitor.keys import Keys
from monitor.model import Item, stable_id
from monitor.pipeline import Pipeline
from monitor.poll import Poller, feed_id
from monitor.queue import Entry, ItemsQueue
from monitor.redisguard import EvictionWatch, write_refusal
from monitor.registry import FeedRegistry, merged
from monitor.retention import GroupLag, stream_groups
from monitor.rules import RuleSet, load_rules

if TYPE_CHECKING:
    from monitor.web import Served

log = structlog.get_logger(__name__)

HOST = socket.gethostname()


def _pid_space() -> str:
    """The host name and PID namespace: where a heartbeat's pid can be checked (containers
    sharing a host name through host networking have PID namespaces of their own)."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:  # not Linux: the host name alone
        return HOST
    return f"{HOST}/{namespace}"


PID_SPACE = _pid_space()
HEARTBEAT_EVERY = 10.0
HEARTBEAT_TTL = 30
STALE_AFTER = 60.0  # /healthz fails when the processing loop has not ticked for this long
FAILING_AFTER = 5  # /healthz fails while this many items in a row have failed
RETENTION_WARN_EVERY = 300.0  # seconds between two warnings about one group's retention
WRITE_PROBE_EVERY = 1.0  # seconds between write attempts while Redis refuses writes


class Metrics:
    def __init__(self) -> None:
        disable_created_metrics()  # *_created series: noise for a daemon's dashboards
        self.registry = CollectorRegistry()
        r = self.registry
        self.polls = Counter("monitor_polls", "Feed polls, by result", ["result"], registry=r)
        self.http = Counter("monitor_http_responses", "Feed HTTP responses", ["code"], registry=r)
        self.enqueued = Counter("monitor_items_enqueued", "New entries appended", registry=r)
        self.skipped = Counter(
            "monitor_entries_skipped", "Entries beyond daemon.max_entries in a poll", registry=r
        )
        self.skewed = Counter(
            "monitor_feed_clock_skew",
            "New entries dated in the future: their report time is when they were first seen",
            registry=r,
        )
        self.folded = Counter(
            "monitor_entries_same_item",
            "New entries folded into a known one because their link is known (same item)",
            registry=r,
        )
        self.suppressed = Counter(
            "monitor_alerts_suppressed",
            "Originals matching a rule that raised no alert: too old, or a first poll's undated",
            ["reason"],
            registry=r,
        )
        self.no_page = Counter(
            "monitor_items_without_page",
            "Items processed from their feed text: the page could not be fetched or extracted",
            registry=r,
        )
        self.processed = Counter(
            "monitor_items_processed", "Items processed, by dedup outcome", ["outcome"], registry=r
        )
        self.failed = Counter("monitor_items_failed", "Item processing failures", registry=r)
        self.dead = Counter("monitor_items_dead", "Items moved to the dead letters", registry=r)
        self.alerts = Counter("monitor_alerts_published", "Alerts published", registry=r)
        self.latency = Histogram(
            "monitor_processing_seconds",
            "Time to process one item",
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.poll_time = Histogram("monitor_poll_seconds", "Time of one poll", registry=r)
        self.lag = Gauge("monitor_items_lag", "Items not yet read by any daemon", registry=r)
        self.pending = Gauge("monitor_items_pending", "Items read but not acked", registry=r)
        self.feeds = Gauge("monitor_feeds", "Configured feeds", registry=r)
        self.rules = Gauge("monitor_rules", "Loaded rules", registry=r)
        self.evicted = Counter(
            "monitor_redis_evicted_keys", "Keys Redis evicted while the daemon ran", registry=r
        )
        self.refusals = Counter(
            "monitor_redis_write_refusals",
            "Times Redis began refusing writes (OOM, READONLY, MISCONF), by reason",
            ["reason"],
            registry=r,
        )
        self.writable = Gauge(
            "monitor_redis_writable", "1 while Redis accepts the daemon's writes", registry=r
        )
        self.failing = Gauge(
            "monitor_items_failing_in_a_row", "Items that failed since the last success", registry=r
        )
        self.stalled = Gauge(
            "monitor_loop_seconds_since_turn",
            "Seconds since the processing loop turned",
            registry=r,
        )
        group = ["stream", "group"]
        self.group_lag = Gauge(
            "monitor_group_lag", "Entries not yet delivered to a consumer group", group, registry=r
        )
        self.group_pending = Gauge(
            "monitor_group_pending", "Entries delivered to a group, not acked", group, registry=r
        )
        self.group_age = Gauge(
            "monitor_group_oldest_seconds",
            "Age of a group's oldest entry not handled yet (pending or not delivered)",
            group,
            registry=r,
        )
        self.group_used = Gauge(
            "monitor_group_retention_used",
            "Share of the stream's retention a group's oldest unhandled entry has used "
            "(trimmed at 1; warned from 0.8)",
            group,
            registry=r,
        )
        self.items_trimmed = Counter(
            "monitor_items_trimmed_before_delivery",
            "Pending items found trimmed from the stream, dead-lettered",
            registry=r,
        )
        self.healthy = Gauge(
            "monitor_healthy", "1 while /healthz would answer 200 (Redis probe aside)", registry=r
        )


class Daemon:
    def __init__(self, settings: Settings, client: redis.Redis) -> None:
        self.settings = settings
        self.client = client
        self.keys = Keys(settings.prefix)
        self.instance = settings.daemon.consumer or f"{HOST}-{os.getpid()}"
        self.metrics = Metrics()
        self.stop = threading.Event()
        self.last_tick = time.monotonic()
        self.refused: str | None = None  # why Redis refuses writes, while it does
        self.refused_at = 0.0
        self.failures_in_a_row = 0
        self._retention_warned: dict[tuple[str, str], float] = {}
        self.fetcher = HttpFetcher(settings.http, trusted_hosts=_hosts(settings.feeds))
        self.items = ItemsQueue(client, self.keys, maxlen=settings.daemon.items_maxlen)
        self.poller = Poller(
            client,
            self.keys,
            self.fetcher,
            self.items,
            settings.schedule,
            seen_per_feed=settings.daemon.seen_per_feed,
            max_entries=settings.daemon.max_entries,
        )
        self.registry = FeedRegistry(client, self.keys)
        self.evictions = EvictionWatch(client)
        self.feeds = merged(settings.feeds, self.registry)
        self._paused = self.registry.paused()  # `monitor feeds pause`: not scheduled
        self.listening = ""  # the address /metrics got (daemon.listen may ask for port 0)
        self.fetcher.trusted |= _hosts(self.feeds)
        self.rules, self._rules_mark = self._load_rules()
        self.pipeline: Pipeline = runtime.pipeline(client, settings, self.rules, self.fetcher)
        self.scheduler = BackgroundScheduler(
            executors={"default": JobPool(settings.schedule.workers)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=UTC,
        )
        self.page_pool = ThreadPoolExecutor(max(2, settings.daemon.batch), "page")
        self._reload = threading.Event()
        self.metrics.feeds.set(len(self.feeds))
        self.metrics.lag.set_function(lambda: self.items.lag()[0])
        self.metrics.pending.set_function(lambda: self.items.lag()[1])
        self.metrics.writable.set_function(lambda: 0 if self.refused else 1)
        self.metrics.failing.set_function(lambda: self.failures_in_a_row)
        self.metrics.stalled.set_function(lambda: time.monotonic() - self.last_tick)
        self.metrics.healthy.set_function(lambda: 0 if self._problems() else 1)

    # --- lifecycle ---------------------------------------------------------------------

    def run(self) -> int:
        self._signals()
        server = self._serve() if self.settings.daemon.listen else None
        self.items.ensure_group()
        self._backfill_new_rules()
        self._schedule_all()
        self.scheduler.start()
        log.info(
            "daemon_started",
            instance=self.instance,
            feeds=len(self.feeds),
            paused=len(self._paused),
            rules=len(self.rules.rules),
            listen=self.listening or None,
            redis=runtime.describe_redis(self.settings),
        )
        try:
            self._process_loop()
        finally:
            self.scheduler.shutdown(wait=False)
            self.page_pool.shutdown(wait=False, cancel_futures=True)
            self.fetcher.close()
            if server is not None:
                server.shutdown()
            with contextlib.suppress(redis.RedisError):
                self.client.delete(self.keys.daemon(self.instance))
            log.info("daemon_stopped", instance=self.instance)
        return 0

    def _signals(self) -> None:
        def stop(signum: int, frame: object) -> None:
            if self.stop.is_set():
                log.warning("daemon_killed", signal=signal.Signals(signum).name)
                os._exit(1)  # second signal: at once
            log.info("daemon_stopping", signal=signal.Signals(signum).name)
            self.stop.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, lambda *_: self._reload.set())

    # --- polling -----------------------------------------------------------------------

    def _schedule_all(self) -> None:
        for feed in self.feeds:
            if feed_id(feed) not in self._paused:
                self._schedule_first(feed)

    def _schedule_first(self, feed: FeedConfig) -> None:
        """At the stored next poll, or (soon) now if that has passed."""
        now = time.time()
        state = self.poller.state(feed)
        self._schedule(
            feed, state.next_poll if state.next_poll > now else now + random.uniform(0, 2)
        )

    def _schedule(self, feed: FeedConfig, when: float) -> None:
        if self.stop.is_set():
            return
        self.scheduler.add_job(
            self._poll_job,
            "date",
            run_date=datetime.fromtimestamp(when, tz=UTC),
            args=[feed],
            id=feed_id(feed),
            name=feed.name or feed.url,
            replace_existing=True,
        )

    def _poll_job(self, feed: FeedConfig) -> None:
        """One poll of one feed, unless another daemon has it or did it already."""
        fid = feed_id(feed)
        if self.refused is not None:  # Redis refuses writes: nothing found could be kept
            self.metrics.polls.labels("deferred").inc()
            self._schedule(feed, time.time() + min(30.0, feed.interval or 30.0))
            return
        try:
            if self.registry.is_paused(fid):
                self._paused.add(fid)  # paused since scheduled; `resume` schedules it again
                return
            now = time.time()
            state = self.poller.state(feed)
            interval = state.interval or feed.interval or self.settings.schedule.interval
            # Polled by another daemon meanwhile (its next time is ahead, or it was polled
            # within half an interval): follow its schedule.
            if state.next_poll > now + 1 or now - state.last_poll < interval / 2:
                self._schedule(feed, max(state.next_poll, now + interval / 2))
                return
            # The lease only has to outlive the poll itself; it must expire before the next
            # one, which can come after 0.675 x interval (new items x0.75, jitter -10%).
            lease_ms = max(1000, int(0.5 * interval * 1000))
            if not self.client.set(self.keys.lease(fid), self.instance, nx=True, px=lease_ms):
                self._schedule(feed, now + min(interval, 60) * random.uniform(0.5, 1.0))
                return
            with self.metrics.poll_time.time():
                report = self.poller.poll(feed, now, state)
            self.metrics.polls.labels("error" if report.error else "ok").inc()
            self.metrics.http.labels(str(report.status)).inc()
            self.metrics.enqueued.inc(len(report.new))
            self.metrics.skipped.inc(report.skipped)
            self.metrics.skewed.inc(report.skewed)
            self.metrics.folded.inc(report.folded)
            self._schedule(feed, report.next_poll)
        except Exception as exc:  # a loop boundary: log, count, and poll again later
            log.exception("poll_failed", feed=fid, error=str(exc))
            self.metrics.polls.labels("failed").inc()
            retry = min(30.0, feed.interval or self.settings.schedule.interval)
            self._schedule(feed, time.time() + retry)

    # --- processing --------------------------------------------------------------------

    def _process_loop(self) -> None:
        cfg = self.settings.daemon
        next_claim = 0.0
        next_beat = 0.0
        next_rules = time.monotonic() + cfg.rules_check
        own = True  # first what this consumer name held when it last stopped, in order
        orphans, next_orphans = True, 0.0  # then what dead daemons held, in order
        while not self.stop.is_set():
            self.last_tick = now = time.monotonic()
            try:
                if self.refused is not None:  # nothing else until a write succeeds again
                    self._heartbeat()
                    self._writable_again()
                    # Take back what this daemon held, at once and at full speed, then
                    # what dead daemons left (not at the claim trickle).
                    own, orphans, next_claim = True, True, 0.0
                    next_beat = now + HEARTBEAT_EVERY
                if now >= next_beat:
                    self._heartbeat()
                    self.metrics.evicted.inc(self.evictions.check())
                    self._check_retention()
                    next_beat = now + HEARTBEAT_EVERY
                if self._reload.is_set() or now >= next_rules:
                    self._reload.clear()
                    self._maybe_reload_rules()
                    self._sync_feeds()
                    next_rules = now + cfg.rules_check
                batch: list[Entry[Item]] = []
                if own:
                    batch = self.items.take_own(self.instance, count=cfg.batch)
                    own = bool(batch)
                if not batch and (orphans or now >= next_orphans):
                    # Dead daemons' items before new ones, in stream order: after a crash
                    # (and a Redis roll-back) the same reports found the same stories.
                    batch = self.items.take_from(
                        self.instance, self._dead_members(), count=cfg.batch
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
                self._handle(batch)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.error("redis_unavailable", error=str(exc), retry_in=2)
                self.stop.wait(2)
                own = True  # back: first what this daemon held
            except Exception as exc:  # the loop boundary: nothing may end the daemon
                if reason := write_refusal(exc):
                    self._write_refused(reason, exc)
                    self.stop.wait(WRITE_PROBE_EVERY)
                    continue
                log.exception("loop_error", error=str(exc))
                self.stop.wait(2)

    def _check_retention(self) -> list[GroupLag]:
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
                log.warning("group_near_retention", stream=g.stream, group=g.group, lag=g.lag,
                            pending=g.pending, behind=g.behind, oldest_s=round(g.oldest_age),
                            used=round(g.used, 3), lost=g.lost or None)  # fmt: skip
        trimmed, self.items.trimmed = self.items.trimmed, 0
        m.items_trimmed.inc(trimmed)
        return found

    def _write_refused(self, reason: str, exc: BaseException) -> None:
        """Redis answers but refuses writes: said once, counted, shown by /healthz; items in
        hand stay pending with this daemon until writes succeed again."""
        if self.refused is not None:
            return
        self.refused, self.refused_at = reason, time.monotonic()
        self.metrics.refusals.labels(reason).inc()
        log.error("redis_refuses_writes", reason=reason, error=str(exc).splitlines()[0],
                  hint="free memory, raise maxmemory or fix the replica/disk; the daemon "
                  "resumes by itself")  # fmt: skip

    def _writable_again(self) -> None:
        if self.refused is None:
            return
        log.info("redis_writable_again", reason=self.refused,
                 after_s=round(time.monotonic() - self.refused_at, 1))  # fmt: skip
        self.refused = None

    def _handle(self, batch: list[Entry[Item]]) -> None:
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
        for queued in ready:
            if self.stop.is_set():
                break  # the rest stay pending: another daemon (or we, restarted) re-claims them
            assert queued.value is not None
            self.last_tick = time.monotonic()
            started = time.perf_counter()
            try:
                page = self._page(pages.get(queued.entry_id))
                if self.stop.is_set():
                    break  # stopped while its page was loading: hand it back, unacked
                result = self.pipeline.process(queued.value, page)
            except (redis.ConnectionError, redis.TimeoutError):
                raise  # not the item's fault: the loop waits for Redis
            except Exception as exc:  # a loop boundary: left pending, retried, then dead
                if write_refusal(exc):
                    raise  # not the item's fault either: the batch stays ours, pending
                log.exception("item_failed", item=queued.value.id, error=str(exc))
                self.metrics.failed.inc()
                self.failures_in_a_row += 1
                continue
            self.failures_in_a_row = 0
            self.items.ack(queued.entry_id)
            self.metrics.latency.observe(time.perf_counter() - started)
            self.metrics.processed.labels(str(result.placement.outcome)).inc()
            self.metrics.alerts.inc(len(result.alerts))
            if result.outcome_folded:
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
        while future is not None and not self.stop.is_set():
            self.last_tick = time.monotonic()  # waiting on a page is the loop turning
            try:
                return future.result(timeout=0.2)
            except FutureTimeout:
                if time.monotonic() > deadline:
                    return FetchError("page", "no answer within the fetch deadline")
        return None

    def _dead_members(self) -> list[str]:
        """Members of the items group that are gone: no heartbeat, or one from this host
        whose process no longer exists (a daemon killed a moment ago, whose heartbeat has
        not expired yet). Those holding nothing are removed from the group."""
        members = {n: p for n, p in self.items.consumers().items() if n != self.instance}
        if not members:
            return []
        beats = self.client.mget([self.keys.daemon(name) for name in members])
        dead = [name for name, beat in zip(members, beats, strict=True) if not _alive(beat)]
        self.items.forget(*(name for name in dead if not members[name]))
        return [name for name in dead if members[name]]

    def _heartbeat(self) -> None:
        beat = {
            "instance": self.instance,
            "host": PID_SPACE,
            "pid": os.getpid(),
            "at": time.time(),
            "feeds": len(self.feeds),
            "rules": len(self.rules.rules),
            "listen": self.listening,
        }
        self.client.set(self.keys.daemon(self.instance), json.dumps(beat), ex=HEARTBEAT_TTL)

    # --- rules -------------------------------------------------------------------------

    def _rules_signature(self) -> tuple:
        directory = self.settings.rules_dir
        try:
            return tuple(
                sorted(
                    (p.name, p.stat().st_mtime_ns, p.stat().st_size)
                    for p in Path(directory).iterdir()
                )
            )
        except OSError:
            return ()

    def _load_rules(self) -> tuple[RuleSet, tuple]:
        mark = self._rules_signature()
        rules = load_rules(self.settings.rules_dir)
        self.metrics.rules.set(len(rules.rules))
        return rules, mark

    def _maybe_reload_rules(self) -> None:
        if self._rules_signature() == self._rules_mark:
            return
        try:
            rules, mark = self._load_rules()
        except Exception as exc:  # whatever a rule file does, the old rules keep running
            self._rules_mark = self._rules_signature()  # do not log it again every check
            log.error("rules_reload_failed", error=str(exc), kept=len(self.rules.rules))
            return
        self.rules, self._rules_mark = rules, mark
        self.pipeline.rules = rules
        log.info("rules_reloaded", rules=len(rules.rules))
        self._backfill_new_rules()

    def _backfill_new_rules(self) -> None:
        """Run each rule that asks for it (`backfill: 3d`) over that past, once per version
        of the rule (a changed query backfills again; alert ids keep it idempotent)."""
        assert self.pipeline.retained is not None
        for rule in self.rules.rules:
            if not rule.backfill or not rule.enabled:
                continue
            version = stable_id(rule.query, ",".join(rule.languages), str(rule.min_score))
            marker = self.keys.backfilled(rule.id)
            if self.client.get(marker) == version:
                continue
            report = backfill.run(
                rule, self.pipeline.retained, self.pipeline,
                since=time.time() - rule.backfill, dry_run=False,
            )  # fmt: skip
            self.client.set(marker, version)
            self.metrics.alerts.inc(report.alerts)
            log.info("rule_backfilled", rule=rule.id, items=report.items, matched=report.matched,
                     stories=len(report.stories), alerts=report.alerts)  # fmt: skip

    def _sync_feeds(self) -> None:
        """Follow `monitor feeds import / remove / pause / resume` made since the start."""
        try:
            current = merged(self.settings.feeds, self.registry)
            paused = self.registry.paused()
        except (MonitorError, ValueError, TypeError, redis.ResponseError) as exc:
            log.error("feed_registry_unreadable", error=str(exc))
            return
        known = {feed_id(f) for f in self.feeds}
        now_ids = {feed_id(f) for f in current}
        for fid in known - now_ids:
            self._unschedule(fid)
            log.info("feed_removed", feed=fid)
        for feed in current:
            fid = feed_id(feed)
            if fid in paused:
                if fid not in self._paused:
                    self._unschedule(fid)
                    log.info("feed_paused", feed=fid, url=feed.url)
            elif fid not in known:
                self.fetcher.trusted |= _hosts([feed])
                self._schedule(feed, time.time() + random.uniform(0, 2))
                log.info("feed_added", feed=fid, url=feed.url)
            elif fid in self._paused:
                self._schedule_first(feed)
                log.info("feed_resumed", feed=fid, url=feed.url)
        self.feeds, self._paused = current, paused
        self.metrics.feeds.set(len(self.feeds))

    def _unschedule(self, fid: str) -> None:
        with contextlib.suppress(JobLookupError):
            self.scheduler.remove_job(fid)

    # --- HTTP --------------------------------------------------------------------------

    def _problems(self) -> list[str]:
        """What is wrong, from the daemon's own state (no Redis call)."""
        problems = []
        if self.refused is not None:
            problems.append(f"Redis refuses writes: {self.refused}")
        if self.failures_in_a_row >= FAILING_AFTER:
            problems.append(f"{self.failures_in_a_row} items failed in a row")
        stale = time.monotonic() - self.last_tick
        if stale >= STALE_AFTER:
            problems.append(f"processing loop has not turned for {stale:.0f} s")
        if self.stop.is_set():
            problems.append("stopping")
        return problems

    def liveness(self) -> tuple[bool, dict]:
        """Alive while the processing loop turns (it does while it waits for Redis)."""
        stale = time.monotonic() - self.last_tick
        ok = stale < STALE_AFTER
        return ok, {
            "status": "ok" if ok else "unhealthy",
            "reason": None if ok else f"processing loop has not turned for {stale:.0f} s",
            "loop_seconds_ago": round(stale, 1),
            "instance": self.instance,
        }

    def health(self) -> tuple[bool, dict]:
        """Healthy while Redis answers and accepts a write (the heartbeat), items do not
        fail in a row and the loop turns; the reasons otherwise."""
        redis_ok = True
        try:
            self.client.ping()
            self._heartbeat()  # a write: an out-of-memory Redis still answers PING
        except (redis.ConnectionError, redis.TimeoutError):
            redis_ok = False
        except redis.RedisError as exc:
            if reason := write_refusal(exc):
                self._write_refused(reason, exc)
        problems = ([] if redis_ok else ["Redis unreachable"]) + self._problems()
        return not problems, {
            "status": "unhealthy" if problems else "ok",
            "reason": "; ".join(problems) or None,
            "redis": redis_ok,
            "redis_writable": redis_ok and self.refused is None,
            "failures_in_a_row": self.failures_in_a_row,
            "loop_seconds_ago": round(time.monotonic() - self.last_tick, 1),
            "instance": self.instance,
        }

    def _serve(self) -> ThreadingHTTPServer | Served:
        host, _, port = self.settings.daemon.listen.rpartition(":")
        daemon = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    body, ctype, code = (
                        generate_latest(daemon.metrics.registry),
                        CONTENT_TYPE_LATEST,
                        200,
                    )
                elif self.path in ("/healthz", "/health", "/livez"):
                    # /livez: only what a restart can fix (the loop stuck), for liveness
                    # probes; while Redis refuses writes a restart helps nothing.
                    ok, info = daemon.liveness() if self.path == "/livez" else daemon.health()
                    body, ctype, code = (
                        json.dumps(info).encode(),
                        "application/json",
                        200 if ok else 503,
                    )
                else:
                    body, ctype, code = b"not found\n", "text/plain", 404
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # scrapes are not events

        if self.settings.web.in_daemon:
            return self._serve_desk(host, int(port))
        try:
            server = ThreadingHTTPServer((host, int(port)), Handler)
        except OSError as exc:
            raise ListenError(self.settings.daemon.listen, exc) from exc
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
        self.listening = f"{host}:{server.server_address[1]}"
        log.info("http_listening", address=self.listening)
        return server

    def _serve_desk(self, host: str, port: int) -> Served:
        """/healthz, /livez and /metrics with the desk beside them (web.in_daemon)."""
        from monitor.web import Served, bind, create_app, with_desk

        def health(check: Callable[[], tuple[bool, dict]]) -> Callable[[], tuple[int, str, bytes]]:
            def answer() -> tuple[int, str, bytes]:
                ok, info = check()
                return 200 if ok else 503, "application/json", json.dumps(info).encode()

            return answer

        endpoints = {
            "/metrics": lambda: (200, CONTENT_TYPE_LATEST, generate_latest(self.metrics.registry)),
            "/healthz": health(self.health),
            "/health": health(self.health),
            "/livez": health(self.liveness),
        }
        try:
            sock = bind(host, port)
        except OSError as exc:
            raise ListenError(self.settings.daemon.listen, exc) from exc
        app = with_desk(create_app(self.settings, self.client, lambda: self.rules), endpoints)
        served = Served(app, sock)
        self.listening = f"{host}:{sock.getsockname()[1]}"
        log.info("http_listening", address=self.listening, desk=True)
        return served


def _alive(beat: str | None) -> bool:
    """Whether a heartbeat is that of a running daemon."""
    if beat is None:
        return False
    try:
        info = json.loads(beat)
        if info.get("host") != PID_SPACE:
            return True  # another host or container: its heartbeat's expiry tells
        os.kill(int(info["pid"]), 0)
    except ProcessLookupError:
        return False
    except (ValueError, TypeError, KeyError, PermissionError, AttributeError):
        return True  # unreadable, or another user's process: assume alive
    return True


def _hosts(feeds: Iterable[FeedConfig]) -> set[str]:
    return {(urlsplit(f.url).hostname or "").lower() for f in feeds}


def _fetch(fetcher: HttpFetcher, url: str) -> Page | MonitorError:
    try:
        return fetcher.fetch(url)
    except MonitorError as exc:
        return exc
