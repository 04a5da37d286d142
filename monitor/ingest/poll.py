"""Polling one feed: conditional GET, parse, keep the entries not seen before, append them
to the items stream, and record the feed's state in Redis (so a restart, or another
daemon, carries on where this one stopped)."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime

import redis
import structlog

from monitor.config import FeedConfig, ScheduleSettings
from monitor.errors import FeedError, FetchError
from monitor.ingest.feeds import item_url, parse_document
from monitor.ingest.fetch import HttpFetcher, Response
from monitor.ingest.items import ItemsQueue
from monitor.ingest.schedule import PollOutcome, max_age, next_interval, retry_after, with_jitter
from monitor.model import Item, oldest_first, stable_id
from monitor.store.batched import BatchedRedis
from monitor.store.keys import Keys

log = structlog.get_logger(__name__)

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/rdf+xml;q=0.9, application/xml;q=0.8, text/xml;q=0.8, "
    "application/json;q=0.8, */*;q=0.5"
)


def feed_id(feed: FeedConfig) -> str:
    """Stable for the configured URL, even after a permanent redirect moved the feed."""
    return stable_id("feed", feed.url)


@dataclass(slots=True, kw_only=True)
class FeedState:
    """What Redis remembers of a feed between polls (all strings/numbers: a Redis hash)."""

    url: str = ""  # current URL: the configured one, or where a permanent redirect led
    etag: str = ""
    last_modified: str = ""
    interval: float = 0.0
    last_poll: float = 0.0
    next_poll: float = 0.0
    last_status: int = 0
    last_new: int = 0
    last_error: str = ""
    errors: int = 0  # consecutive
    polls: int = 0
    total_errors: int = 0
    total_items: int = 0
    baselined: int = 0  # 1 once a poll has read the feed: its back catalogue is behind it

    @classmethod
    def from_hash(cls, data: dict[str, str]) -> FeedState:
        state = cls()
        for f in fields(cls):
            if f.name in data:
                kind = type(getattr(state, f.name))
                setattr(
                    state, f.name, kind(float(data[f.name])) if kind is not str else data[f.name]
                )
        return state

    def to_hash(self) -> dict[str, str | float | int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True, kw_only=True)
class PollReport:
    feed: str
    status: int  # HTTP status, 0 when no response
    new: list[Item] = field(default_factory=list)
    entries: int = 0
    skipped: int = 0  # entries beyond max_entries
    skewed: int = 0  # new entries dated in the future (the feed's clock is wrong)
    folded: int = 0  # new entries with a known link under another GUID (same item)
    baseline: bool = False  # this poll read the feed's back catalogue (its first)
    error: str = ""
    next_poll: float = 0.0


@dataclass(slots=True)
class _Taken:
    """What the entries of a 200 gave (read in a thread: parsing and Redis calls block)."""

    new: list[Item] = field(default_factory=list)
    entries: int = 0
    skipped: int = 0
    skewed: int = 0
    folded: int = 0
    baseline: bool = False
    ttl: float | None = None


# Parsing a feed takes milliseconds to seconds: never on the HTTP loop, and not in the
# loop's default executor either (the address guard resolves names there).
_PARSING = ThreadPoolExecutor(4, thread_name_prefix="feed-parse")


class Poller:
    """Polls a feed: `apoll` on the fetcher's event loop, `poll` from any other thread."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        fetcher: HttpFetcher,
        items: ItemsQueue,
        schedule: ScheduleSettings,
        *,
        seen_per_feed: int = 10_000,
        max_entries: int = 1_000,
        rng: random.Random | None = None,
        redis_io: BatchedRedis | None = None,
        warn_failures: bool = True,
    ) -> None:
        """`warn_failures=False`: a failed poll's `feed_polled` is logged at info, like a
        good one, for a caller that tells the failure itself (`monitor feeds poll-now`)."""
        self.client = client
        self.keys = keys
        self.fetcher = fetcher
        self.items = items
        self.schedule = schedule
        self.seen_per_feed = seen_per_feed
        self.max_entries = max_entries
        self.rng = rng or random.Random()
        self.redis_io = redis_io or BatchedRedis(client)
        self.warn_failures = warn_failures

    def state(self, feed: FeedConfig) -> FeedState:
        return FeedState.from_hash(self.client.hgetall(self.keys.feed(feed_id(feed))))

    def poll(
        self, feed: FeedConfig, now: float | None = None, state: FeedState | None = None
    ) -> PollReport:
        """`apoll`, for a caller outside the fetcher's loop."""
        return self.fetcher.run(self.apoll(feed, now, state), feed.url)

    async def apoll(
        self, feed: FeedConfig, now: float | None = None, state: FeedState | None = None
    ) -> PollReport:
        """Poll once. Never raises for what the feed or the network does: errors are
        recorded in the feed's state and push its next poll back. Redis's errors (a refused
        write among them: `monitor.store.refusals`) are raised before the entries are marked
        seen or the state written, so the caller defers the poll and nothing is lost or
        counted against the feed. `state`: the feed's state if the caller has just read it."""
        fid = feed_id(feed)
        now = time.time() if now is None else now
        if state is None:
            (raw,) = await self.redis_io(lambda pipe: pipe.hgetall(self.keys.feed(fid)))
            state = FeedState.from_hash(raw)
        state.url = state.url or feed.url
        state.interval = state.interval or feed.interval or self.schedule.interval
        started = time.monotonic()
        response: Response | None = None
        taken = _Taken()
        error = ""
        try:
            response = await self.fetcher.aget(
                state.url, etag=state.etag, last_modified=state.last_modified, accept=FEED_ACCEPT
            )
            if response.status == 200:
                loop = asyncio.get_running_loop()
                call = functools.partial(self._take, fid, response, state, now)
                taken = await loop.run_in_executor(_PARSING, contextvars.copy_context().run, call)
            elif response.status != 304:
                error = f"HTTP {response.status}"
        except (FetchError, FeedError) as exc:
            error = exc.reason
        new = taken.new
        ok = not error
        state.errors = 0 if ok else state.errors + 1
        outcome = PollOutcome(
            ok=ok,
            new_items=len(new),
            errors=state.errors,
            retry_after=retry_after(response.headers.get("retry-after")) if response else None,
            max_age=max_age(response.headers) if response and ok else None,
            ttl=taken.ttl,
        )
        interval = next_interval(state.interval, outcome, self.schedule, fixed=feed.interval)
        if ok:
            state.interval = interval
        if response is not None:
            if ok:
                state.etag = response.headers.get("etag", state.etag)
                state.last_modified = response.headers.get("last-modified", state.last_modified)
            if ok and response.permanent_url and response.permanent_url != state.url:
                log.info("feed_moved", feed=fid, old=state.url, new=response.permanent_url)
                state.url = response.permanent_url
        state.last_poll = now
        state.next_poll = now + with_jitter(interval, self.schedule.jitter, self.rng.random())
        state.last_status = response.status if response else 0
        state.last_new = len(new)
        state.last_error = error
        state.polls += 1
        state.total_errors += 0 if ok else 1
        state.total_items += len(new)
        written = state.to_hash()
        await self.redis_io(lambda pipe: pipe.hset(self.keys.feed(fid), mapping=written))
        log_event = log.warning if self.warn_failures and not ok else log.info
        log_event(
            "feed_polled",
            feed=fid,
            url=state.url,
            status=state.last_status,
            entries=taken.entries,
            new=len(new),
            skipped=taken.skipped or None,
            baseline=taken.baseline or None,
            error=error or None,
            errors=state.errors,
            next_in=round(state.next_poll - now),
            ms=round((time.monotonic() - started) * 1000),
        )
        return PollReport(
            feed=fid,
            status=state.last_status,
            new=new,
            entries=taken.entries,
            skipped=taken.skipped,
            skewed=taken.skewed,
            folded=taken.folded,
            baseline=taken.baseline,
            error=error,
            next_poll=state.next_poll,
        )

    def _take(self, fid: str, response: Response, state: FeedState, now: float) -> _Taken:
        """Parse a 200's document, keep the entries not seen before, append them to the
        items stream and remember them (blocking: runs in a thread). Marks the feed's
        state as baselined."""
        document = parse_document(response.body, url=response.url, headers=response.headers)
        seen_at = datetime.fromtimestamp(now, UTC)
        items = [dataclasses.replace(i, first_seen=seen_at) for i in document.items]
        taken = _Taken(entries=len(items), ttl=_ttl(response.body))
        if taken.entries > self.max_entries:
            items = newest(self._first_seen(fid, items), self.max_entries)
            taken.skipped = taken.entries - len(items)
        new, folded_marks = self._unseen(fid, items)
        taken.folded = len(folded_marks)
        # The first poll that reads the feed is its baseline: its entries are
        # processed, but alert only when recent.
        taken.baseline = not state.baselined and not state.total_items
        if taken.baseline:
            new = [dataclasses.replace(i, baseline=True) for i in new]
        state.baselined = 1
        taken.skewed = sum(1 for i in new if i.skewed)
        if taken.skewed:
            example = next(i for i in new if i.skewed)
            log.warning(
                "feed_clock_skew",
                feed=fid,
                url=state.url,
                entries=taken.skewed,
                published=example.published.isoformat() if example.published else None,
                first_seen=seen_at.isoformat(),
            )
        if new:  # oldest first: the story tier meets them in report-time order
            self.items.append(oldest_first(new))
        if new or folded_marks:
            self._mark_seen(fid, new, now, folded_marks)
        taken.new = new
        return taken

    def _first_seen(self, fid: str, items: list[Item]) -> list[Item]:
        """The items, those without a trustworthy date (undated, or dated in the future)
        carrying when this feed first gave them: their report time, so that a re-listed
        entry from a broken clock ranks by when it was news, not as news forever."""
        doubtful = [n for n, item in enumerate(items) if item.published is None or item.skewed]
        marks = [_marks(items[n])[0] for n in doubtful]
        scores = self.client.zmscore(self.keys.feed_seen(fid), marks) if marks else []
        items = list(items)
        for n, score in zip(doubtful, scores, strict=True):
            if score is not None:
                items[n] = dataclasses.replace(
                    items[n], first_seen=datetime.fromtimestamp(score, UTC)
                )
        return items

    def _unseen(self, fid: str, items: list[Item]) -> tuple[list[Item], list[str]]:
        """Entries whose GUID and canonical URL this feed has not given before, and the
        new GUIDs folded into a known entry because their link is known (each logged as
        `same_item`, never a silent drop, and remembered so it is logged once)."""
        marks = [_marks(item) for item in items]
        flat = [m for pair in marks for m in pair]
        scores = self.client.zmscore(self.keys.feed_seen(fid), flat) if flat else []
        known = {m for m, score in zip(flat, scores, strict=True) if score is not None}
        unseen: list[Item] = []
        batch: set[str] = set()
        folded: list[str] = []
        for item, pair in zip(items, marks, strict=True):
            if known.isdisjoint(pair) and batch.isdisjoint(pair):
                unseen.append(item)
                batch.update(pair)
            elif item.guid and ("g:" + item.guid) not in known and ("g:" + item.guid) not in batch:
                folded.append("g:" + item.guid)
                batch.add("g:" + item.guid)
                log.info("same_item", feed=fid, guid=item.guid, url=item.url, reason="link known")
        return unseen, folded

    def _mark_seen(
        self, fid: str, items: list[Item], now: float, also: list[str] | None = None
    ) -> None:
        key = self.keys.feed_seen(fid)
        pipe = self.client.pipeline(transaction=False)
        marks = {m: now for item in items for m in _marks(item)}
        marks.update((m, now) for m in also or ())
        pipe.zadd(key, marks)
        pipe.zremrangebyrank(key, 0, -(2 * self.seen_per_feed) - 1)  # keep the newest
        pipe.execute()


def newest(items: list[Item], count: int) -> list[Item]:
    """The `count` most recent items by report time (`Item.time`), in document order.
    An entry without a trustworthy date (undated, or dated in the future) that the feed
    gives for the first time ranks after every dated one, in document order: a broken
    clock never crowds real news out. One seen before ranks by when it was first seen."""

    def age(i: int) -> tuple[bool, float, int]:
        item = items[i]
        when = item.time
        doubtful = item.published is None or item.skewed
        if when is None or (doubtful and latest is not None and when >= latest):
            return (True, 0.0, i)  # never seen before: no date to go by
        return (False, -when.timestamp(), i)

    latest = max((i.first_seen for i in items if i.first_seen), default=None)
    return [items[i] for i in sorted(sorted(range(len(items)), key=age)[:count])]


def _marks(item: Item) -> tuple[str, ...]:
    marks = []
    if item.guid:
        marks.append("g:" + item.guid)
    if item.url:
        marks.append("u:" + item_url(item))
    return tuple(marks)


def _ttl(body: bytes) -> float | None:
    """RSS <ttl> (minutes) in seconds, read cheaply from the start of the document."""
    head = body[:4096]
    start = head.find(b"<ttl>")
    if start < 0:
        return None
    end = head.find(b"</ttl>", start)
    value = head[start + 5 : end].strip() if end > 0 else b""
    return float(value) * 60 if value.isdigit() else None
