"""Polling on a schedule: one APScheduler date job per feed, rescheduled after each poll, a
Redis lease per poll so that several daemons poll each feed once per interval, and the
feed list kept in step with `monitor feeds import / remove / pause / resume`."""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import urlsplit

import redis
import structlog
from apscheduler.executors.pool import ThreadPoolExecutor as JobPool
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler

from monitor.config import FeedConfig, Settings
from monitor.daemon.health import Health
from monitor.daemon.metrics import Metrics
from monitor.errors import MonitorError
from monitor.fetch import HttpFetcher
from monitor.keys import Keys
from monitor.poll import Poller, feed_id
from monitor.queue import ItemsQueue
from monitor.registry import FeedRegistry, merged

log = structlog.get_logger("monitor.daemon")


class Scheduler:
    def __init__(
        self, settings: Settings, client: redis.Redis, *, instance: str, fetcher: HttpFetcher,
        items: ItemsQueue, metrics: Metrics, health: Health,
    ) -> None:  # fmt: skip
        self.settings = settings
        self.client = client
        self.keys = Keys(settings.prefix)
        self.instance = instance
        self.fetcher = fetcher
        self.metrics = metrics
        self.health = health
        self.poller = Poller(
            client, self.keys, fetcher, items, settings.schedule,
            seen_per_feed=settings.daemon.seen_per_feed, max_entries=settings.daemon.max_entries,
        )  # fmt: skip
        self.registry = FeedRegistry(client, self.keys)
        self.feeds = merged(settings.feeds, self.registry)
        self.paused = self.registry.paused()  # `monitor feeds pause`: not scheduled
        self.fetcher.trusted |= hosts(self.feeds)
        self.jobs = BackgroundScheduler(
            executors={"default": JobPool(settings.schedule.workers)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=UTC,
        )
        metrics.feeds.set(len(self.feeds))

    def start(self) -> None:
        for feed in self.feeds:
            if feed_id(feed) not in self.paused:
                self.schedule_first(feed)
        self.jobs.start()

    def shutdown(self) -> None:
        self.jobs.shutdown(wait=False)

    def schedule_first(self, feed: FeedConfig) -> None:
        """At the stored next poll, or (soon) now if that has passed."""
        now = time.time()
        state = self.poller.state(feed)
        self.schedule(
            feed, state.next_poll if state.next_poll > now else now + random.uniform(0, 2)
        )

    def schedule(self, feed: FeedConfig, when: float) -> None:
        if self.health.stop.is_set():
            return
        self.jobs.add_job(
            self.poll,
            "date",
            run_date=datetime.fromtimestamp(when, tz=UTC),
            args=[feed],
            id=feed_id(feed),
            name=feed.name or feed.url,
            replace_existing=True,
        )

    def poll(self, feed: FeedConfig) -> None:
        """One poll of one feed, unless another daemon has it or did it already."""
        fid = feed_id(feed)
        if self.health.refused is not None:  # Redis refuses writes: nothing found could be kept
            self.metrics.polls.labels("deferred").inc()
            self.schedule(feed, time.time() + min(30.0, feed.interval or 30.0))
            return
        try:
            if self.registry.is_paused(fid):
                self.paused.add(fid)  # paused since scheduled; `resume` schedules it again
                return
            now = time.time()
            state = self.poller.state(feed)
            interval = state.interval or feed.interval or self.settings.schedule.interval
            # Polled by another daemon meanwhile (its next time is ahead, or it was polled
            # within half an interval): follow its schedule.
            if state.next_poll > now + 1 or now - state.last_poll < interval / 2:
                self.schedule(feed, max(state.next_poll, now + interval / 2))
                return
            # The lease only has to outlive the poll itself; it must expire before the next
            # one, which can come after 0.675 x interval (new items x0.75, jitter -10%).
            lease_ms = max(1000, int(0.5 * interval * 1000))
            if not self.client.set(self.keys.lease(fid), self.instance, nx=True, px=lease_ms):
                self.schedule(feed, now + min(interval, 60) * random.uniform(0.5, 1.0))
                return
            with self.metrics.poll_time.time():
                report = self.poller.poll(feed, now, state)
            self.metrics.polls.labels("error" if report.error else "ok").inc()
            self.metrics.http.labels(str(report.status)).inc()
            self.metrics.enqueued.inc(len(report.new))
            self.metrics.skipped.inc(report.skipped)
            self.metrics.skewed.inc(report.skewed)
            self.metrics.folded.inc(report.folded)
            self.schedule(feed, report.next_poll)
        except Exception as exc:  # a loop boundary: log, count, and poll again later
            log.exception("poll_failed", feed=fid, error=str(exc))
            self.metrics.polls.labels("failed").inc()
            retry = min(30.0, feed.interval or self.settings.schedule.interval)
            self.schedule(feed, time.time() + retry)

    def sync_feeds(self) -> None:
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
            self.unschedule(fid)
            log.info("feed_removed", feed=fid)
        for feed in current:
            fid = feed_id(feed)
            if fid in paused:
                if fid not in self.paused:
                    self.unschedule(fid)
                    log.info("feed_paused", feed=fid, url=feed.url)
            elif fid not in known:
                self.fetcher.trusted |= hosts([feed])
                self.schedule(feed, time.time() + random.uniform(0, 2))
                log.info("feed_added", feed=fid, url=feed.url)
            elif fid in self.paused:
                self.schedule_first(feed)
                log.info("feed_resumed", feed=fid, url=feed.url)
        self.feeds, self.paused = current, paused
        self.metrics.feeds.set(len(self.feeds))

    def unschedule(self, fid: str) -> None:
        with contextlib.suppress(JobLookupError):
            self.jobs.remove_job(fid)


def hosts(feeds: Iterable[FeedConfig]) -> set[str]:
    return {(urlsplit(f.url).hostname or "").lower() for f in feeds}
