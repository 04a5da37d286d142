"""Feeds added at run time (`monitor feeds import`), kept in Redis beside those of
monitor.toml, so that every daemon on the same Redis polls them."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import redis
import structlog

from monitor.config import FeedConfig, Settings
from monitor.errors import ConfigError, MonitorError
from monitor.ingest.feeds import canonical_url
from monitor.ingest.poll import FeedState, Poller, PollReport
from monitor.ingest.poll import feed_id as _feed_id
from monitor.store.keys import Keys

log = structlog.get_logger(__name__)


class FeedRegistry:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self.key = keys.feeds

    def add(
        self, feeds: list[FeedConfig], known: tuple[FeedConfig, ...] = ()
    ) -> tuple[list[FeedConfig], list[FeedConfig]]:
        """Add feeds not known yet (by canonical URL): (added, already there)."""
        present = {canonical_url(f.url) for f in (*self.all(), *known)}
        added, duplicates = [], []
        for feed in feeds:
            key = canonical_url(feed.url)
            if key in present:
                duplicates.append(feed)
                continue
            present.add(key)
            added.append(feed)
        if added:
            self.client.hset(self.key, mapping={f.url: _encode(f) for f in added})
        return added, duplicates

    def all(self) -> list[FeedConfig]:
        """The registered feeds; an entry that does not decode is skipped (and logged)."""
        feeds = []
        for url, data in sorted(self.client.hgetall(self.key).items()):
            try:
                feeds.append(_decode(url, data))
            except (ValueError, TypeError, AttributeError, ConfigError) as exc:
                log.error("feed_registry_entry_skipped", url=url, error=str(exc))
        return feeds

    def remove(self, feed: FeedConfig) -> bool:
        """Forget an imported feed with its polling state and seen entries. False if it
        was not imported (a feed of monitor.toml is removed from that file)."""
        fid = _feed_id(feed)
        # One after the other (they live in different slots of a cluster): first out of the
        # list, so no daemon picks it up again; then its state.
        removed = self.client.hdel(self.key, feed.url)
        self.client.delete(self.keys.feed(fid), self.keys.feed_seen(fid), self.keys.lease(fid))
        self.client.srem(self.keys.feeds_paused, fid)
        return bool(removed)

    def pause(self, feed: FeedConfig) -> bool:
        """Stop polling the feed (on every daemon); False if it was paused already."""
        return bool(self.client.sadd(self.keys.feeds_paused, _feed_id(feed)))

    def resume(self, feed: FeedConfig) -> bool:
        """Poll it again; False if it was not paused."""
        return bool(self.client.srem(self.keys.feeds_paused, _feed_id(feed)))

    def paused(self) -> set[str]:
        """The ids of the paused feeds."""
        return set(self.client.smembers(self.keys.feeds_paused))


class UnknownFeed(MonitorError):
    """No feed, or more than one, answers to what the user typed."""

    def __init__(self, ref: str, candidates: list[FeedConfig]) -> None:
        if candidates:
            names = ", ".join(f.url for f in candidates)
            super().__init__(f"{ref!r} names {len(candidates)} feeds ({names}): give the URL")
        else:
            super().__init__(f"no feed {ref!r}: give a URL, name or id from `monitor feeds list`")


def find(feeds: list[FeedConfig], ref: str) -> FeedConfig:
    """The feed whose URL (exact or canonical), id or name (ignoring case) is `ref`."""
    text = ref.strip()
    for feed in feeds:
        if text in (feed.url, _feed_id(feed)):
            return feed
    with_url = (
        [f for f in feeds if canonical_url(f.url) == canonical_url(text)] if "://" in text else []
    )
    named = with_url or [f for f in feeds if f.name and f.name.casefold() == text.casefold()]
    if len(named) != 1:
        raise UnknownFeed(ref, named)
    return named[0]


def merged(configured: tuple[FeedConfig, ...], registry: FeedRegistry) -> list[FeedConfig]:
    """The feeds of monitor.toml, then the registry's; the configuration wins a duplicate."""
    feeds = list(configured)
    seen = {canonical_url(f.url) for f in feeds}
    for feed in registry.all():
        if canonical_url(feed.url) not in seen:
            seen.add(canonical_url(feed.url))
            feeds.append(feed)
    return feeds


def _encode(feed: FeedConfig) -> str:
    return json.dumps({"name": feed.name, "interval": feed.interval, "tags": list(feed.tags)})


def _decode(url: str, data: str) -> FeedConfig:
    fields = json.loads(data)
    return FeedConfig(
        url=url,
        name=fields.get("name", ""),
        interval=fields.get("interval"),
        tags=tuple(fields.get("tags", ())),
    )


def feed_rows(settings: Settings, client: redis.Redis) -> list[dict[str, Any]]:
    """Every feed (monitor.toml's, then the imported ones) with its polling state."""
    keys = Keys(settings.prefix)
    registry = FeedRegistry(client, keys)
    paused = registry.paused()
    rows = []
    for feed in merged(settings.feeds, registry):
        fid = _feed_id(feed)
        state = FeedState.from_hash(client.hgetall(keys.feed(fid)))
        rows.append(
            {
                "id": fid,
                "name": feed.name,
                "url": state.url or feed.url,
                "tags": list(feed.tags),
                "last_poll": _iso(state.last_poll),
                "status": state.last_status or None,
                "new": state.last_new,
                "errors": state.errors,
                "last_error": state.last_error or None,
                "next_poll": _iso(state.next_poll),
                "interval": round(state.interval) or None,
                "polls": state.polls,
                "items": state.total_items,
                "paused": fid in paused,
                "configured": feed in settings.feeds,
            }
        )
    return rows


def poll_now(
    settings: Settings,
    client: redis.Redis,
    feed: FeedConfig,
    feeds: list[FeedConfig],
    *,
    warn: bool = True,
) -> PollReport:
    """Poll the feed from this process; new entries go to the items stream, where a
    running daemon (or the next one started) processes them. An old lease left by the
    previous poll is taken over: it guards nothing any more. `warn=False`: a failure is
    not logged as a warning (the caller tells it; the report has it)."""
    from monitor.ingest.fetch import HttpFetcher
    from monitor.ingest.items import ItemsQueue

    keys = Keys(settings.prefix)
    hosts = {(urlsplit(f.url).hostname or "").lower() for f in feeds}
    fetcher = HttpFetcher(settings.http, trusted_hosts=hosts)
    try:
        poller = Poller(
            client,
            keys,
            fetcher,
            ItemsQueue(client, keys, maxlen=settings.daemon.items_maxlen),
            settings.schedule,
            seen_per_feed=settings.daemon.seen_per_feed,
            max_entries=settings.daemon.max_entries,
            warn_failures=warn,
        )
        fid = _feed_id(feed)
        state = poller.state(feed)
        interval = state.interval or feed.interval or settings.schedule.interval
        mine = f"poll-now-{os.getpid()}"
        client.set(keys.lease(fid), mine, px=max(1000, int(0.5 * interval * 1000)))
        report = poller.poll(feed, time.time(), state)
        if client.get(keys.lease(fid)) == mine:
            client.delete(keys.lease(fid))
    finally:
        fetcher.close()
    return report


def _iso(ts: float) -> str | None:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds") if ts else None
