"""Redis Streams: the alerts stream and its consumers.

Publishing is idempotent: an alert id is published at most once while its marker key
lives (`alert_id_ttl_days`), so a re-delivered item or a second replay adds nothing.
The marker and the XADD happen in one Lua script: a crash cannot leave one without the other.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis

from monitor.errors import RedisUnavailable
from monitor.keys import Keys
from monitor.model import Item

_PUBLISH = """
if redis.call('SET', KEYS[1], '', 'NX', 'EX', ARGV[2]) then
  local entry = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*',
                           'id', ARGV[4], 'alert', ARGV[1])
  redis.call('SET', KEYS[1], entry, 'KEEPTTL')
  return entry
end
return false
"""


def connect(url: str) -> redis.Redis:
    """A client for `url`, checked with a PING so a bad URL fails here, clearly."""
    try:
        client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=10)
        client.ping()
    except ValueError as exc:
        raise RedisUnavailable(f"bad Redis URL {url!r}: {exc}") from exc
    except (redis.RedisError, OSError) as exc:
        raise RedisUnavailable(f"cannot reach Redis at {_redact(url)}: {exc}") from exc
    return client


def _redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"


@dataclass(frozen=True, slots=True)
class Delivered:
    entry_id: str  # the stream entry id
    alert: dict[str, Any]


class AlertQueue:
    def __init__(self, client: redis.Redis, keys: Keys, *, maxlen: int, id_ttl: int) -> None:
        self.client = client
        self.keys = keys
        self.maxlen = maxlen
        self.id_ttl = id_ttl
        self._publish = client.register_script(_PUBLISH)

    def publish(self, alert: dict[str, Any]) -> str | None:
        """Append the alert unless its id was published before; the entry id, or None."""
        body = json.dumps(alert, ensure_ascii=False, separators=(",", ":"))
        entry = self._publish(
            keys=[self.keys.alert_seen(alert["id"]), self.keys.alerts],
            args=[body, self.id_ttl, self.maxlen, alert["id"]],
        )
        return str(entry) if entry else None

    def is_published(self, alert_id: str) -> bool:
        return bool(self.client.exists(self.keys.alert_seen(alert_id)))

    def read(self, *, start: str = "-", count: int | None = None) -> Iterator[Delivered]:
        """Alerts in stream order from `start` (inclusive), without a consumer group."""
        batch = 500
        remaining = count
        while remaining is None or remaining > 0:
            size = batch if remaining is None else min(batch, remaining)
            entries = self.client.xrange(self.keys.alerts, min=start, count=size)
            for entry_id, fields in entries:
                yield Delivered(entry_id, json.loads(fields["alert"]))
            if remaining is not None:
                remaining -= len(entries)
            if len(entries) < size:
                return
            start = "(" + entries[-1][0]

    def ensure_group(self, group: str) -> None:
        """Create the group at the start of the retained stream, so it misses nothing."""
        try:
            self.client.xgroup_create(self.keys.alerts, group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read_group(
        self, group: str, consumer: str, *, count: int, block_ms: int | None = None
    ) -> list[Delivered]:
        """New alerts for this group member; they stay pending until `ack`."""
        reply = self.client.xreadgroup(
            group, consumer, {self.keys.alerts: ">"}, count=count, block=block_ms
        )
        return [Delivered(eid, json.loads(fields["alert"])) for eid, fields in _entries(reply)]

    def ack(self, group: str, *entry_ids: str) -> None:
        if entry_ids:
            self.client.xack(self.keys.alerts, group, *entry_ids)

    def last_id(self) -> str:
        info = (
            self.client.xinfo_stream(self.keys.alerts)
            if self.client.exists(self.keys.alerts)
            else None
        )
        return info["last-generated-id"] if info else "0-0"


@dataclass(frozen=True, slots=True)
class Queued:
    entry_id: str
    item: Item | None  # None: the entry could not be decoded
    raw: dict[str, str]
    deliveries: int = 1


class ItemsQueue:
    """The durable `items` stream between polling and processing, read by one consumer
    group: each item goes to one daemon, stays pending until acked, and is re-claimed
    from a daemon that died. Items delivered too often go to `items:dead`."""

    GROUP = "processors"

    def __init__(self, client: redis.Redis, keys: Keys, *, maxlen: int) -> None:
        self.client = client
        self.keys = keys
        self.maxlen = maxlen

    def append(self, items: list[Item]) -> list[str]:
        pipe = self.client.pipeline(transaction=False)
        for item in items:
            pipe.xadd(
                self.keys.items, {"item": item.to_json()}, maxlen=self.maxlen, approximate=True
            )
        return [str(entry) for entry in pipe.execute()]

    def ensure_group(self) -> None:
        try:
            self.client.xgroup_create(self.keys.items, self.GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(self, consumer: str, *, count: int, block_ms: int | None) -> list[Queued]:
        reply = self.client.xreadgroup(
            self.GROUP, consumer, {self.keys.items: ">"}, count=count, block=block_ms
        )
        return [self._decode(eid, fields) for eid, fields in _entries(reply)]

    def claim_stale(self, consumer: str, *, min_idle_ms: int, count: int) -> list[Queued]:
        """Take over items another consumer left pending for `min_idle_ms`."""
        reply = self.client.xautoclaim(
            self.keys.items, self.GROUP, consumer, min_idle_ms, start_id="0-0", count=count
        )
        _cursor, entries, *_deleted = reply  # 2 elements on Redis 6.2, 3 on 7.x
        entries = [(eid, fields) for eid, fields in entries if fields]  # trimmed meanwhile
        if not entries:
            return []
        pending = self.client.xpending_range(
            self.keys.items,
            self.GROUP,
            min=entries[0][0],
            max=entries[-1][0],
            count=len(entries) * 2,
        )
        times = {p["message_id"]: p["times_delivered"] for p in pending}
        return [self._decode(eid, fields, times.get(eid, 1)) for eid, fields in entries]

    def ack(self, *entry_ids: str) -> None:
        if entry_ids:
            self.client.xack(self.keys.items, self.GROUP, *entry_ids)

    def dead_letter(self, queued: Queued, reason: str) -> None:
        """Move an item that cannot be processed aside, with the reason, and ack it."""
        pipe = self.client.pipeline(transaction=True)
        pipe.xadd(
            self.keys.items_dead,
            {**queued.raw, "reason": reason, "entry": queued.entry_id},
            maxlen=self.maxlen,
            approximate=True,
        )
        pipe.xack(self.keys.items, self.GROUP, queued.entry_id)
        pipe.execute()

    def lag(self) -> tuple[int, int]:
        """(entries not yet delivered to the group, entries delivered but not acked)."""
        try:
            groups = self.client.xinfo_groups(self.keys.items)
        except redis.ResponseError:
            return 0, 0
        for group in groups:
            if group["name"] == self.GROUP:
                lag = group.get("lag")
                if lag is None:  # Redis < 7: count what is after the last delivered id
                    last = group["last-delivered-id"]
                    lag = len(
                        self.client.xrange(self.keys.items, min=f"({last}", count=10_000)
                    )  # capped
                return int(lag), int(group["pending"])
        return 0, 0

    @staticmethod
    def _decode(entry_id: str, fields: dict[str, str], deliveries: int = 1) -> Queued:
        try:
            item = Item.from_json(fields["item"])
        except (KeyError, ValueError, TypeError):
            item = None
        return Queued(entry_id, item, fields, deliveries)


def _entries(reply) -> list:
    if not reply:
        return []
    if isinstance(reply, dict):  # RESP3
        return next(iter(reply.values()))[0]
    return reply[0][1]  # RESP2
