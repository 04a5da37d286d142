"""How far each consumer group of a stream is behind, and how close to the stream's
retention: computed by the monitor itself, since Redis 6.2's XINFO GROUPS has no `lag`.

Every entry the monitor adds carries its number (`seq`, from a counter per stream), so the
entries after a group's last delivered one are a subtraction, at any stream length. A group
is at risk when its oldest entry not yet handled (its oldest pending entry, else the first
one not delivered) nears the point where the stream is trimmed: `maxlen` entries from the
end, or `max_age` seconds old.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from monitor.config import Settings
from monitor.store.keys import Keys
from monitor.units import format_age

WARN_AT = 0.8  # share of the retention a group may use before a warning (within 20%)
_COUNT_CAP = 10_000  # entries counted one by one on streams written before `seq` existed


@dataclass(frozen=True, slots=True)
class GroupLag:
    stream: str
    group: str
    lag: int  # entries not yet delivered to the group (still retained)
    pending: int  # delivered, not acked
    behind: int  # entries from the group's oldest unhandled one to the end of the stream
    oldest_age: float  # seconds since that entry was added; 0 when the group is up to date
    used: float  # share of the retention the group uses: max(behind/maxlen, age/max_age)
    lost: bool  # its oldest pending entry is trimmed already

    @property
    def at_risk(self) -> bool:
        return self.lost or self.used >= WARN_AT

    def describe(self) -> str:
        line = (
            f"{self.lag} unread, {self.pending} pending, oldest {format_age(self.oldest_age)}, "
            f"{self.used:.0%} of retention"
        )
        if self.lost:
            return line + " — pending entries were trimmed before delivery"
        if self.at_risk:
            return line + f" — within {1 - WARN_AT:.0%} of retention"
        return line


def group_lags(
    client: redis.Redis, stream: str, *, maxlen: int, max_age: float = 0.0
) -> list[GroupLag]:
    """One GroupLag per consumer group of `stream` (none when it does not exist)."""
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:  # no such stream
        return []
    last = client.xrevrange(stream, count=1)
    last_seq = _seq(last[0][1]) if last else None
    now = time.time()
    found = []
    for info in groups:
        name, pending = str(info["name"]), int(info["pending"])
        after = client.xrange(stream, min="(" + str(info["last-delivered-id"]), count=1)
        lag = _after(client, stream, info, after, last_seq)
        oldest = after[0][0] if after else None
        lost = False
        first_pending = client.xpending(stream, name)["min"] if pending else None
        if first_pending:  # (None: acked since XINFO answered)
            oldest = first_pending
            lost = not client.xrange(stream, min=oldest, max=oldest)
        behind = _behind(client, stream, oldest, last_seq) if oldest else 0
        age = max(0.0, now - int(str(oldest).split("-")[0]) / 1000) if oldest else 0.0
        used = max(behind / maxlen, age / max_age if max_age else 0.0)
        found.append(GroupLag(stream, name, lag, pending, behind, age, used, lost))
    return found


def stream_groups(client: redis.Redis, settings: Settings) -> list[GroupLag]:
    """The groups of the alerts and items streams, with their retention."""
    keys = Keys(settings.prefix)
    return [
        *group_lags(
            client,
            keys.alerts,
            maxlen=settings.alerts_maxlen,
            max_age=settings.alerts_max_age_days * 86400,
        ),
        *group_lags(client, keys.items, maxlen=settings.daemon.items_maxlen),
    ]


def _after(client: redis.Redis, stream: str, info: dict, after: list, last_seq: int | None) -> int:
    if info.get("lag") is not None:  # Redis >= 7 knows it
        return int(info["lag"])
    if not after:
        return 0
    first = _seq(after[0][1])
    if first is not None and last_seq is not None:
        return last_seq - first + 1
    start = "(" + str(info["last-delivered-id"])
    return len(client.xrange(stream, min=start, count=_COUNT_CAP))


def _behind(client: redis.Redis, stream: str, oldest: str, last_seq: int | None) -> int:
    """Entries from `oldest` (or the first one after it, if trimmed) to the end."""
    entry = client.xrange(stream, min=oldest, count=1)
    if not entry:
        return 0
    first = _seq(entry[0][1])
    if first is not None and last_seq is not None:
        return last_seq - first + 1
    return len(client.xrange(stream, min=oldest, count=_COUNT_CAP))


def _seq(fields: dict) -> int | None:
    value = fields.get("seq")
    return int(value) if value is not None else None
