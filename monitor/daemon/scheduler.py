"""Polling on a schedule: each feed's next poll in a heap of due times on the HTTP event
loop, its poll a coroutine there (at most `schedule.workers` at once), rescheduled after
each poll; a Redis lease per poll so that several daemons poll each feed once per interval;
the feed list kept in step with `monitor feeds import / remove / pause / resume`.

Everything that touches the heap runs on the loop; other threads (the processing loop's
housekeeping, signal handling) hand their changes over with `call_soon_threadsafe`. The
polls' Redis commands go through one `BatchedRedis`, so the loop never blocks on Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import itertools
import random
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from urllib.parse import urlsplit

import redis
import structlog

from monitor.batched import BatchedRedis
from monitor.config import FeedConfig, Settings
from monitor.daemon.health import Health
from monitor.daemon.metrics import Metrics
from monitor.errors import MonitorError
from monitor.fetch import HttpFetcher
from monitor.keys import Keys
from monitor.poll import FeedState, Poller, feed_id
from monitor.queue import ItemsQueue
from monitor.registry import FeedRegistry, merged

log = structlog.get_logger("monitor.daemon")

STATE_BATCH = 1000  # feed states read in one pipeline at start


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
        self.loop = fetcher.loop
        self.metrics = metrics
        self.health = health
        self.redis_io = BatchedRedis(client)
        self.poller = Poller(
            client, self.keys, fetcher, items, settings.schedule,
            seen_per_feed=settings.daemon.seen_per_feed, max_entries=settings.daemon.max_entries,
            redis_io=self.redis_io,
        )  # fmt: skip
        self.registry = FeedRegistry(client, self.keys)
        self.feeds = merged(settings.feeds, self.registry)
        self.paused = self.registry.paused()  # `monitor feeds pause`: not scheduled
        self.fetcher.trusted |= hosts(self.feeds)
        # Touched only on the loop: the heap of (when, n, feed id), each feed's live entry
        # (an entry replaced or removed stays in the heap until popped, then is skipped),
        # the feeds being polled and the poll tasks.
        self._heap: list[tuple[float, int, str]] = []
        self._jobs: dict[str, tuple[float, int, FeedConfig]] = {}
        self._running: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._count = itertools.count()
        self._wake: asyncio.Event | None = None
        self._stopped = False
        self._dispatcher: Future[None] | None = None
        metrics.feeds.set(len(self.feeds))

    # --- from any thread -------------------------------------------------------------------

    def start(self) -> None:
        active = [f for f in self.feeds if feed_id(f) not in self.paused]
        firsts = [
            (f, self.first_time(f, s)) for f, s in zip(active, self._states(active), strict=True)
        ]
        self._on_loop(lambda: self._put_all(firsts))
        self._dispatcher = asyncio.run_coroutine_threadsafe(self._dispatch(), self.loop)

    def shutdown(self) -> None:
        """Stop polling: no new poll starts, those under way are cancelled (their leases
        expire; what a cancelled poll appended is known as seen by the next one)."""
        if self._dispatcher is not None:
            self._on_loop(self._stop)

    def schedule_first(self, feed: FeedConfig) -> None:
        """At the stored next poll, or (soon) now if that has passed."""
        self.schedule(feed, self.first_time(feed, self.poller.state(feed)))

    def schedule(self, feed: FeedConfig, when: float) -> None:
        self._on_loop(lambda: self._put(feed, when))

    def unschedule(self, fid: str) -> None:
        self._on_loop(lambda: self._jobs.pop(fid, None))

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

    def _on_loop(self, call: Callable[[], object]) -> None:
        if self.fetcher.on_loop():
            call()
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the daemon stops
                self.loop.call_soon_threadsafe(call)

    def _states(self, feeds: list[FeedConfig]) -> list[FeedState]:
        states: list[FeedState] = []
        for start in range(0, len(feeds), STATE_BATCH):
            pipe = self.client.pipeline(transaction=False)
            for feed in feeds[start : start + STATE_BATCH]:
                pipe.hgetall(self.keys.feed(feed_id(feed)))
            states.extend(FeedState.from_hash(raw) for raw in pipe.execute())
        return states

    # --- on the loop ---------------------------------------------------------------------

    def _put(self, feed: FeedConfig, when: float) -> None:
        if self._stopped or self.health.stop.is_set():
            return
        fid = feed_id(feed)
        entry = (when, next(self._count), fid)
        self._jobs[fid] = (when, entry[1], feed)
        heapq.heappush(self._heap, entry)
        if self._wake is not None and self._heap[0] is entry:
            self._wake.set()

    def _put_all(self, jobs: list[tuple[FeedConfig, float]]) -> None:
        for feed, when in jobs:
            self._put(feed, when)

    def _stop(self) -> None:
        self._stopped = True
        if self._dispatcher is not None:
            self._dispatcher.cancel()
        for task in self._tasks:
            task.cancel()
        self._jobs.clear()

    async def _dispatch(self) -> None:
        self._wake = asyncio.Event()
        slots = asyncio.Semaphore(self.settings.schedule.workers)
        while not self.health.stop.is_set():
            try:
                await self._start_due(slots)
            except Exception as exc:  # a loop boundary: polling must go on
                log.exception("scheduler_error", error=str(exc))
                await asyncio.sleep(1.0)
            delay = self._heap[0][0] - time.time() if self._heap else 60.0
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, min(delay, 60.0))):
                    await self._wake.wait()

    async def _start_due(self, slots: asyncio.Semaphore) -> None:
        """Start the poll of every feed that is due, as slots free up."""
        while self._heap and self._heap[0][0] <= time.time():
            _, n, fid = heapq.heappop(self._heap)
            job = self._jobs.get(fid)
            if job is None or job[1] != n:  # replaced or removed since
                continue
            del self._jobs[fid]
            if fid in self._running:  # one poll of a feed at a time; it reschedules
                continue
            await slots.acquire()
            self._running.add(fid)
            task = asyncio.create_task(self.poll(job[2]))
            self._tasks.add(task)
            task.add_done_callback(functools.partial(self._done, fid=fid, slots=slots))

    def _done(self, task: asyncio.Task[None], fid: str, slots: asyncio.Semaphore) -> None:
        self._tasks.discard(task)
        self._running.discard(fid)
        slots.release()

    async def poll(self, feed: FeedConfig) -> None:
        """One poll of one feed, unless another daemon has it or did it already."""
        fid = feed_id(feed)
        if self.health.refused is not None:  # Redis refuses writes: nothing found could be kept
            self.metrics.polls.labels("deferred").inc()
            self._put(feed, time.time() + min(30.0, feed.interval or 30.0))
            return
        try:
            paused, raw = await self.redis_io(
                lambda pipe: (
                    pipe.sismember(self.keys.feeds_paused, fid),
                    pipe.hgetall(self.keys.feed(fid)),
                )
            )
            if paused:
                self.paused.add(fid)  # paused since scheduled; `resume` schedules it again
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
            (leased,) = await self.redis_io(
                lambda pipe: pipe.set(self.keys.lease(fid), self.instance, nx=True, px=lease_ms)
            )
            if not leased:
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
        except Exception as exc:  # a loop boundary: log, count, and poll again later
            log.exception("poll_failed", feed=fid, error=str(exc))
            self.metrics.polls.labels("failed").inc()
            retry = min(30.0, feed.interval or self.settings.schedule.interval)
            self._put(feed, time.time() + retry)


def hosts(feeds: Iterable[FeedConfig]) -> set[str]:
    return {(urlsplit(f.url).hostname or "").lower() for f in feeds}
