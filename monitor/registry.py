"""Feeds added at run time (`monitor feeds import`), kept in Redis beside those of
monitor.toml, so that every daemon on the same Redis polls them."""

from __future__ import annotations

import json

import redis
import structlog

from monitor.config import FeedConfig
from monitor.errors import ConfigError
from monitor.feeds import canonical_url
from monitor.keys import Keys

log = structlog.get_logger(__name__)


class FeedRegistry:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
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
    return FeedConfig(url=url, name=fields.get("name", ""), interval=fields.get("interval"),
                      tags=tuple(fields.get("tags", ())))  # fmt: skip
