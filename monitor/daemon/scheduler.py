"""Polling on a schedule: one APScheduler job per feed, on an `AsyncIOScheduler` bound to
the HTTP event loop, so each poll is a coroutine there (at most `schedule.workers` at once,
no thread hand-off per poll); each poll moves its feed's job to the next time it chose
(adaptive intervals, backoff); a Redis lease per poll so that several daemons poll each feed
once per interval; the feed list kept in step with `monitor feeds import / remove / pause /
resume`.

APScheduler's job store is thread-safe and its wake-ups run on the loop, so other threads
(the processing loop's housekeeping, signal handling) may add and remove jobs. The polls'
Redis commands go through one `BatchedRedis`, so the loop never blocks on Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import urlsplit

import redis
import structlog
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.config import FeedConfig, Settings
from monitor.daemon.health import POLLS, Health
from monitor.daemon.metrics import Metrics
from monitor.errors import MonitorError
from monitor.ingest.fetch import HttpFetcher
from monitor.ingest.items import ItemsQueue
from monitor.ingest.poll import FeedState, Poller, feed_id
from monitor.ingest.registry import FeedRegistry, merged
from monitor.store.batched import BatchedRedis
from monitor.store.keys import Keys
from monitor.store.refusals import Refusal, refusal

log = structlog.get_logger("monitor.daemon")

STATE_BATCH = 1000  # feed states read in one pipeline at start
DEFER_FOR = 30.0  # seconds a poll waits while Redis refuses writes (at most its interval)
PROBE_EVERY = 5.0  # seconds between polls again of the feed whose writes were refused
RETRY_SOON = 2.0  # seconds before a poll again after a passing refusal (NOSCRIPT, redirect)


class LoopScheduler(AsyncIOScheduler):
    """APScheduler's asyncio scheduler with its wake-ups coalesced: each added job wakes
    the scheduler to look for due jobs (one pass over the job store and one loop hand-off
    per job), and every poll adds its feed's next job. Here jobs added while a wake-up is
    pending share it: one pass per burst. (Uses the 3.x scheduler's timer methods, which
    the pinned version has.)"""

    _pending = False

    def wakeup(self) -> None:
        if self._pending:
            return  # the pass already asked for will see this job too (added before)
        self._pending = True
        self._eventloop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        self._pending = False  # before the pass: a job added during it asks again
        self._stop_timer()
        self._start_timer(self._process_jobs())


class Scheduler:
    def __init__(
        self,
        settings: Settings,
        client: redis.Redis,
        *,
        instance: str,
        fetcher: HttpFetcher,
        items: ItemsQueue,
        metrics: Metrics,
        health: Health,
    ) -> None:
        self.settings = settings
        self.client = client
        self.keys = Keys(settings.prefix)
        self.instance = instance
        self.fetcher = fetcher
        self.loop = fetcher.loop
        self.metrics = metrics
        self.health = health
        self.redis_io = BatchedRedis(client)
        self.poller = Poller(
            client,
            self.keys,
            fetcher,
            items,
            settings.schedule,
            seen_per_feed=settings.daemon.seen_per_feed,
            max_entries=settings.daemon.max_entries,
            redis_io=self.redis_io,
        )
        self.registry = FeedRegistry(client, self.keys)
        self.feeds = merged(settings.feeds, self.registry)
        self.paused = self.registry.paused()  # `monitor feeds pause`: not scheduled
        self.fetcher.trusted |= hosts(self.feeds)
        # A late job still runs (once): a feed is never skipped because the loop was busy.
        self._jobs = LoopScheduler(
            event_loop=self.loop,
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self._slots = asyncio.Semaphore(settings.schedule.workers)
        self._running: set[str] = set()  # feeds being polled (touched on the loop only)
        self._probe: str | None = None  # the feed whose poll's writes were refused: polled
        # again every PROBE_EVERY, it tells when they are accepted (a small write may pass
        # while the append of a poll's items is refused)
        self._stopped = False
        metrics.feeds.set(len(self.feeds))

    # --- from any thread -------------------------------------------------------------------

    def start(self) -> None:
        active = [f for f in self.feeds if feed_id(f) not in self.paused]
        for feed, state in zip(active, self._states(active), strict=True):
            self._put(feed, self.first_time(feed, state))
        self._jobs.start()  # the jobs added before start are stored at once, in one go

    def shutdown(self) -> None:
        """Stop polling: no new poll starts, those under way are cancelled (their leases
        expire; what a cancelled poll appended is known as seen by the next one)."""
        self._stopped = True
        if self._jobs.running:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the daemon stops
                self._jobs.shutdown(wait=False)

    def schedule_first(self, feed: FeedConfig) -> None:
        """At the stored next poll, or (soon) now if that has passed."""
        self.schedule(feed, self.first_time(feed, self.poller.state(feed)))

    def schedule(self, feed: FeedConfig, when: float) -> None:
        self._put(feed, when)

    def unschedule(self, fid: str) -> None:
        with contextlib.suppress(JobLookupError):
            self._jobs.remove_job(fid)
        if fid == self._probe:  # removed or paused: the next refused poll probes instead
            self._probe = None
            self.health.writable_again(POLLS)

    @staticmethod
    def first_time(feed: FeedConfig, state: FeedState) -> float:
        now = time.time()
        return state.next_poll if state.next_poll > now else now + random.uniform(0, 2)

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

    def _states(self, feeds: list[FeedConfig]) -> list[FeedState]:
        states: list[FeedState] = []
        for start in range(0, len(feeds), STATE_BATCH):
            pipe = self.client.pipeline(transaction=False)
            for feed in feeds[start : start + STATE_BATCH]:
                pipe.hgetall(self.keys.feed(feed_id(feed)))
            states.extend(FeedState.from_hash(raw) for raw in pipe.execute())
        return states

    def _put(self, feed: FeedConfig, when: float) -> None:
        """The feed's next poll at `when`. Its job lives as long as the feed is scheduled:
        each poll moves it to the time the poll chose (adaptive interval, backoff), and its
        interval trigger is the fallback should a poll end without choosing."""
        if self._stopped or self.health.stop.is_set():
            return
        fid, at = feed_id(feed), datetime.fromtimestamp(when, UTC)
        try:
            self._jobs.modify_job(fid, next_run_time=at)
        except JobLookupError:
            interval = feed.interval or self.settings.schedule.interval
            self._jobs.add_job(
                self._run,
                IntervalTrigger(seconds=interval, timezone=UTC),
                args=[feed],
                id=fid,
                name=feed.url,
                next_run_time=at,
                replace_existing=True,
            )

    # --- on the loop ---------------------------------------------------------------------

    async def _run(self, feed: FeedConfig) -> None:
        """The job of a feed: its poll, once a slot is free; one poll of a feed at a time
        (a job added while it runs finds it running: the running poll reschedules)."""
        fid = feed_id(feed)
        if fid in self._running or self._stopped:
            return
        self._running.add(fid)
        try:
            async with self._slots:
                await self.poll(feed)
        finally:
            self._running.discard(fid)

    async def poll(self, feed: FeedConfig) -> None:
        """One poll of one feed, unless another daemon has it or did it already."""
        fid = feed_id(feed)
        health = self.health
        probing = fid == self._probe and list(health.refused_in) == [POLLS]
        if health.refused is not None and not probing:
            # Redis refuses writes: nothing found could be kept
            self.metrics.polls.labels("deferred").inc()
            wait = PROBE_EVERY if fid == self._probe else min(DEFER_FOR, feed.interval or DEFER_FOR)
            self._put(feed, time.time() + wait)
            return
        try:
            paused, raw = await self.redis_io(
                lambda pipe: (
                    pipe.sismember(self.keys.feeds_paused, fid),
                    pipe.hgetall(self.keys.feed(fid)),
                )
            )
            if paused:  # paused since scheduled; `resume` schedules it again
                self.paused.add(fid)
                self.unschedule(fid)
                return
            now = time.time()
            state = FeedState.from_hash(raw)
            interval = state.interval or feed.interval or self.settings.schedule.interval
            # Polled by another daemon meanwhile (its next time is ahead, or it was polled
            # within half an interval): follow its schedule.
            if state.next_poll > now + 1 or now - state.last_poll < interval / 2:
                self._put(feed, max(state.next_poll, now + interval / 2))
                return
            # The lease only has to outlive the poll itself; it must expire before the next
            # one, which can come after 0.675 x interval (new items x0.75, jitter -10%).
            lease_ms = max(1000, int(0.5 * interval * 1000))
            # SET NX, then GET: a batch sent again (a cluster redirect) finds its own lease.
            _, holder = await self.redis_io(
                lambda pipe: (
                    pipe.set(self.keys.lease(fid), self.instance, nx=True, px=lease_ms),
                    pipe.get(self.keys.lease(fid)),
                )
            )
            if holder != self.instance:
                self._put(feed, now + min(interval, 60) * random.uniform(0.5, 1.0))
                return
            with self.metrics.poll_time.time():
                report = await self.poller.apoll(feed, now, state)
            self.metrics.polls.labels("error" if report.error else "ok").inc()
            self.metrics.http.labels(str(report.status)).inc()
            self.metrics.enqueued.inc(len(report.new))
            self.metrics.skipped.inc(report.skipped)
            self.metrics.skewed.inc(report.skewed)
            self.metrics.folded.inc(report.folded)
            self._put(feed, report.next_poll)
            if fid == self._probe:
                self._probe = None
                health.writable_again(POLLS)
        except Exception as exc:  # a loop boundary: log, count, and poll again later
            if (found := refusal(exc)) is not None:
                self._refused(feed, found, exc)
                return
            log.exception("poll_failed", feed=fid, error=str(exc))
            self.metrics.polls.labels("failed").inc()
            retry = min(30.0, feed.interval or self.settings.schedule.interval)
            self._put(feed, time.time() + retry)

    def _refused(self, feed: FeedConfig, found: Refusal, exc: Exception) -> None:
        """Redis refused a write of the poll: not the feed's fault (no error counted, its
        entries are not marked seen), the poll is deferred; /healthz says why while
        writes are refused."""
        fid = feed_id(feed)
        self.metrics.polls.labels("deferred").inc()
        if not found.writes_refused:  # passes by itself
            log.warning("poll_deferred", feed=fid, reason=found.reason, retry_in=RETRY_SOON)
            self._put(feed, time.time() + RETRY_SOON)
            return
        if self._probe is None or self._probe == fid:
            self._probe = fid
            self.health.write_refused(found.reason, exc, POLLS)
        log.info("poll_deferred", feed=fid, reason=found.reason, retry_in=PROBE_EVERY)
        self._put(feed, time.time() + PROBE_EVERY)


def hosts(feeds: Iterable[FeedConfig]) -> set[str]:
    return {(urlsplit(f.url).hostname or "").lower() for f in feeds}
