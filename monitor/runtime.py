"""Wiring: settings -> Redis client -> the pipeline's parts. Used by every command."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import redis

from monitor.config import Settings
from monitor.dedup.index import DedupIndex
from monitor.embedded import EmbeddedRedis
from monitor.fetch import Fetcher
from monitor.keys import Keys

__all__ = ["Keys", "alert_queue", "clear", "pipeline", "redis_client"]
from monitor.pipeline import Pipeline
from monitor.queue import AlertQueue, RetainedItems, connect
from monitor.rules import RuleSet


@contextmanager
def redis_client(settings: Settings) -> Iterator[redis.Redis]:
    """The configured Redis, or the embedded one started for the duration."""
    with ExitStack() as stack:
        url = settings.redis_url or stack.enter_context(EmbeddedRedis(settings.data_dir))
        client = connect(url)
        stack.callback(client.close)
        yield client


def alert_queue(client: redis.Redis, settings: Settings) -> AlertQueue:
    return AlertQueue(
        client,
        Keys(settings.prefix),
        maxlen=settings.alerts_maxlen,
        id_ttl=int(settings.alert_id_ttl_days * 86400),
        max_age=settings.alerts_max_age_days * 86400,
    )


def pipeline(client: redis.Redis, settings: Settings, rules: RuleSet, fetcher: Fetcher) -> Pipeline:
    keys = Keys(settings.prefix)
    index = DedupIndex(
        client,
        keys,
        window=settings.window_seconds,
        near_threshold=settings.near_duplicate_threshold,
        story_threshold=settings.story_threshold,
        claim_ttl=int(settings.alert_id_ttl_days * 86400),
        quiet=settings.update_quiet_minutes * 60,
    )
    retained = RetainedItems(
        client,
        keys,
        retention=settings.retention_days * 86400,
        maxlen=settings.retention_max_items,
    )
    return Pipeline(
        fetcher=fetcher,
        index=index,
        rules=rules,
        queue=alert_queue(client, settings),
        retained=retained,
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
