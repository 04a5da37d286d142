"""When to poll a feed next: a pure function of what the last poll saw.

- success with new items: the interval shrinks (x0.75), without: it grows (x1.25), within
  [min_interval, max_interval]; a feed with a configured interval keeps it;
- the server's own hints are honoured as a floor: Retry-After (429/503), Cache-Control
  max-age / Expires, the feed's <ttl> (minutes) — never beyond max_interval (Retry-After
  excepted, up to max_backoff);
- errors back off exponentially from the interval (x2 per consecutive error) up to
  max_backoff, and polling never stops;
- jitter spreads polls of feeds with equal intervals: +-jitter x interval, from `u` in [0, 1).
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from monitor.config import ScheduleSettings

GROW = 1.25
SHRINK = 0.75


@dataclass(frozen=True, slots=True, kw_only=True)
class PollOutcome:
    ok: bool  # the feed was fetched (200 or 304) and, if 200, parsed
    new_items: int = 0
    errors: int = 0  # consecutive errors including this poll
    retry_after: float | None = None  # seconds
    max_age: float | None = None  # seconds, from Cache-Control / Expires
    ttl: float | None = None  # seconds, from the feed's <ttl>


def next_interval(
    current: float,
    outcome: PollOutcome,
    settings: ScheduleSettings,
    *,
    fixed: float | None = None,
) -> float:
    """The interval before the next poll, without jitter. `current` is the interval the last
    success used; `fixed` a feed's configured interval."""
    if not outcome.ok:
        base = fixed or current
        exponent = min(max(outcome.errors, 1), 40)  # 2**40 x any interval is past any cap
        backoff = min(base * 2**exponent, settings.max_backoff)
        if outcome.retry_after is not None:
            backoff = max(backoff, min(outcome.retry_after, settings.max_backoff))
        return max(backoff, settings.min_interval)
    if fixed is not None:
        interval = fixed
    else:
        factor = SHRINK if outcome.new_items else GROW
        interval = min(max(current * factor, settings.min_interval), settings.max_interval)
    hints = [h for h in (outcome.retry_after, outcome.max_age, outcome.ttl) if h]
    if hints:
        interval = max(interval, min(max(hints), settings.max_interval))
    return interval


def with_jitter(interval: float, jitter: float, u: float) -> float:
    """Spread by +-jitter x interval; `u` is uniform in [0, 1)."""
    return interval * (1 + jitter * (2 * u - 1))


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = now or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


_MAX_AGE = re.compile(r"(?:^|[,\s])(?:s-)?max-age\s*=\s*(\d+)", re.IGNORECASE)


def max_age(headers: dict[str, str], now: datetime | None = None) -> float | None:
    """Freshness lifetime from Cache-Control max-age, else Expires."""
    control = headers.get("cache-control", "")
    if "no-cache" in control.lower() or "no-store" in control.lower():
        return None
    m = _MAX_AGE.search(control)
    if m:
        return float(m.group(1))
    expires = headers.get("expires")
    if expires:
        return retry_after(expires, now)
    return None
