"""Digests: a sink that batches alerts into periods and sends one message per period.

`digest = "1h"` (any duration: 30m, 6h, 1d) cuts time into periods aligned on UTC midnight
of 1970 (so "1h" windows start on the hour); `digest = "08:00"` is daily, from 08:00 UTC to
08:00 UTC the next day. An alert belongs to the window of its `created_at`.

State, in Redis (monitor/store/keys.py): each open window's alerts in a hash (alert id -> alert:
adding one twice is harmless), the set of windows waiting to be sent, and the record of the
windows sent. Sending a window and recording it are one step after the receiver said yes —
the record is a transaction that also drops the window from the waiting set — and only the
holder of the sink's lock sends, so a window is never sent twice, even by two forwarders.
An alert redelivered after its window was sent joins the window open now.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from monitor.sinkconfig import Schedule
from monitor.store.keys import Keys

KEEP_SENT = 1000  # windows remembered as sent, per sink


def created(alert: dict[str, Any]) -> float:
    try:
        when = datetime.fromisoformat(str(alert.get("created_at", "")).replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return when.timestamp()


@dataclass(frozen=True, slots=True)
class Window:
    sink: str
    start: int
    end: int
    alerts: tuple[dict[str, Any], ...]

    @property
    def id(self) -> str:
        """Stable: the same sink and window always give the same id (webhook-id)."""
        return f"digest-{self.sink}-{self.start}"


class DigestStore:
    def __init__(
        self, client: redis.Redis, keys: Keys, sink: str, schedule: Schedule, lock_ttl: float = 120
    ) -> None:
        self.client = client
        self.keys = keys
        self.sink = sink
        self.schedule = schedule
        self.lock_ttl = lock_ttl

    def add(self, alert: dict[str, Any], now: float) -> int:
        """Keep an alert for its window (the open one if its own was sent); the start."""
        start = self.schedule.window(created(alert) or now)[0]
        if self.client.hexists(self.keys.digest_sent(self.sink), str(start)):
            start = self.schedule.window(now)[0]
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(
            self.keys.digest_window(self.sink, start),
            str(alert.get("id", "")),
            json.dumps(alert, ensure_ascii=False),
        )
        pipe.zadd(self.keys.digest_windows(self.sink), {str(start): start})
        pipe.execute()
        return start

    def waiting(self) -> list[int]:
        """Starts of the windows holding alerts, not yet sent, oldest first."""
        return [int(s) for s in self.client.zrange(self.keys.digest_windows(self.sink), 0, -1)]

    def due(self, now: float) -> list[int]:
        return [s for s in self.waiting() if self.schedule.window(s)[1] <= now]

    def window(self, start: int) -> Window:
        raw = self.client.hvals(self.keys.digest_window(self.sink, start))
        alerts = sorted((json.loads(a) for a in raw), key=lambda a: (created(a), a.get("id", "")))
        return Window(self.sink, start, self.schedule.window(start)[1], tuple(alerts))

    def lock(self) -> Any:
        """The sink's send lock (redis-py Lock, expiring): only its holder sends windows."""
        return self.client.lock(
            self.keys.digest_lock(self.sink), timeout=self.lock_ttl, blocking=False
        )

    def still_waiting(self, start: int) -> bool:
        return self.client.zscore(self.keys.digest_windows(self.sink), str(start)) is not None

    def mark_sent(self, window: Window, now: float) -> None:
        record = {
            "sent_at": datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z"),
            "alerts": len(window.alerts),
            "stories": len({a.get("story", {}).get("id") for a in window.alerts}),
        }
        sent = self.keys.digest_sent(self.sink)
        pipe = self.client.pipeline(transaction=True)
        pipe.zrem(self.keys.digest_windows(self.sink), str(window.start))
        pipe.delete(self.keys.digest_window(self.sink, window.start))
        pipe.hset(sent, str(window.start), json.dumps(record))
        pipe.execute()
        starts = sorted(int(s) for s in self.client.hkeys(sent))
        if len(starts) > KEEP_SENT:
            self.client.hdel(sent, *(str(s) for s in starts[: len(starts) - KEEP_SENT]))

    def sent(self) -> dict[int, dict[str, Any]]:
        """The windows recorded as sent: start -> {sent_at, alerts, stories}."""
        raw = self.client.hgetall(self.keys.digest_sent(self.sink))
        return {int(k): json.loads(v) for k, v in raw.items()}
