"""Wiring: settings -> Redis client -> the pipeline's parts. Used by every command."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

import redis
import structlog

from monitor.config import Settings
from monitor.delivery.queue import AlertQueue
from monitor.errors import RedisUnavailable
from monitor.retained.items import RetainedItems
from monitor.store.connection import connect, redact
from monitor.store.embedded import EmbeddedRedis
from monitor.store.keys import Keys
from monitor.store.layout import migrate
from monitor.store.redisguard import check_eviction, fsync_policies

if TYPE_CHECKING:  # the pipeline's parts are imported when one is built: `monitor --help`
    # and the commands that need no pipeline start without trafilatura and numpy
    from monitor.dedup.index import DedupIndex
    from monitor.ingest.fetch import Fetcher
    from monitor.pipeline.process import Pipeline
    from monitor.rules import RuleSet

__all__ = [
    "Keys",
    "alert_queue",
    "clear",
    "dedup_index",
    "describe_redis",
    "durable_hold",
    "pipeline",
    "redis_client",
    "redis_url",
    "retained_items",
]


log = structlog.get_logger(__name__)


@contextmanager
def redis_url(settings: Settings) -> Iterator[str]:
    """The configured Redis URL, or the embedded server's, started for the duration."""
    if settings.redis_url:
        yield settings.redis_url
        return
    with EmbeddedRedis(settings.state_dir) as url:
        yield url


@contextmanager
def redis_client(
    settings: Settings, *, wait: threading.Event | None = None, check: bool = True
) -> Iterator[redis.Redis]:
    """The configured Redis, or the embedded one started for the duration. With `wait`, an
    unreachable Redis is retried (1 s, doubling to 30 s) until it answers or `wait` is set.
    With `check`, a Redis that may evict keys is refused (RedisEvicts) unless the settings
    allow it (redisguard). Keys of an older layout are renamed (monitor/store/layout.py)."""
    with ExitStack() as stack:
        url = stack.enter_context(redis_url(settings))
        client = connect(url) if wait is None else _retrying(url, wait)
        stack.callback(client.close)
        if check:
            check_eviction(client, allow=settings.redis_allow_eviction, where=redact(url))
        try:
            migrate(client, Keys(settings.prefix))
        except (redis.exceptions.NoPermissionError, redis.exceptions.ReadOnlyError) as exc:
            # A user that may not scan or write (a read-only consumer, a replica): its
            # commands still work; the first command of one that may renames the keys.
            log.warning("keys_not_migrated", error=str(exc))
        yield client


def describe_redis(settings: Settings) -> str:
    """Where the data is, for people: the URL without its password, or the embedded
    server's state directory."""
    if settings.redis_url:
        return redact(settings.redis_url)
    return f"embedded, state in {settings.state_dir.resolve()}"


def _retrying(url: str, stop: threading.Event) -> redis.Redis:
    delay = 1.0
    while True:
        try:
            return connect(url)
        except RedisUnavailable as exc:
            if stop.is_set() or "bad Redis URL" in str(exc):
                raise
            log.error("redis_unavailable", error=str(exc), retry_in=delay)
            if stop.wait(delay):
                raise
            delay = min(30.0, delay * 2)


def durable_hold(client: redis.Redis, settings: Settings) -> tuple[float, str]:
    """How long the daemon holds alerts back from consumers, and how Redis persists
    (why): `alerts.durable_hold` while a crash may lose Redis's last writes — AOF with
    `appendfsync everysec` or `no` — or when Redis will not say (CONFIG GET refused, as on
    many managed services); 0 with `appendfsync always` (nothing acknowledged is lost) or
    without AOF (a restart loses more than any hold covers)."""
    found = fsync_policies(client)
    said = ", ".join(sorted("unknown (CONFIG GET refused)" if f is None else f for f in found))
    lossy = found - {"always", "no aof"}
    return (settings.alerts.durable_hold if lossy else 0.0), said


def alert_queue(client: redis.Redis, settings: Settings, *, hold: float = 0.0) -> AlertQueue:
    """The alerts stream; `hold`: seconds an alert is held before consumers see it (the
    daemon's, from durable_hold; commands publish at once)."""
    return AlertQueue(
        client,
        Keys(settings.prefix),
        maxlen=settings.alerts_maxlen,
        id_ttl=int(settings.alert_id_ttl_days * 86400),
        max_age=settings.alerts_max_age_days * 86400,
        claim_ttl=int(settings.alert_id_ttl_days * 86400),
        quiet=settings.update_quiet_minutes * 60,
        hold=hold,
    )


def dedup_index(client: redis.Redis, settings: Settings) -> DedupIndex:
    """The dedup index; on a cluster, its store spreads its reads (dedup/spread.py)."""
    from monitor.dedup.index import DedupIndex

    return DedupIndex.from_settings(client, Keys(settings.prefix), settings)


def pipeline(
    client: redis.Redis,
    settings: Settings,
    rules: RuleSet,
    fetcher: Fetcher,
    *,
    hold: float = 0.0,
) -> Pipeline:
    """The pipeline's parts, wired; `hold`: as in alert_queue."""
    from monitor.pipeline.process import Pipeline
    from monitor.retained.adds import StoryFacts
    from monitor.retained.cards import Desk

    keys = Keys(settings.prefix)
    index = dedup_index(client, settings)
    retained = retained_items(client, settings)
    return Pipeline(
        fetcher=fetcher,
        index=index,
        rules=rules,
        queue=alert_queue(client, settings, hold=hold),
        retained=retained,
        max_age=settings.alerts.max_age,
        desk=Desk(client, keys, retention=settings.retention_days * 86400),
        breaking=settings.breaking,
        breaking_quiet=settings.breaking_quiet_hours * 3600,
        facts=StoryFacts(client, keys, retention=settings.retention_days * 86400),
    )


def retained_items(client: redis.Redis, settings: Settings) -> RetainedItems:
    """The retained items (and their search index), as the settings keep them."""
    return RetainedItems(
        client,
        Keys(settings.prefix),
        retention=settings.retention_days * 86400,
        maxlen=settings.retention_max_items,
    )


def clear(client: redis.Redis, settings: Settings) -> int:
    """Delete every key under the prefix (replay --fresh). Returns how many."""
    deleted = 0
    batch: list[str] = []
    for key in client.scan_iter(match=Keys(settings.prefix).pattern, count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            deleted += client.unlink(*batch)
            batch.clear()
    if batch:
        deleted += client.unlink(*batch)
    return deleted
