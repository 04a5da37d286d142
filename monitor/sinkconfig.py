"""The settings of one sink (`[[sinks]]` in monitor.toml), validated at start.

    [[sinks]]
    name = "oncall"                  # a-z, 0-9, - and _; names its consumer group sink:oncall
    type = "apprise"                 # or "webhook"
    url = "slack://T000/B000/XXXX"   # an Apprise URL, or the webhook's https:// URL
    min_severity = "high"            # routing: rules, min_severity, tags, sources, languages, kinds
    digest = "1h"                    # optional: one message per hour (or "08:00": daily, UTC)

Any key can also come from the environment, for secrets: MONITOR_SINKS_<NAME>_<KEY>, the
name upper-cased with - as _ (MONITOR_SINKS_ONCALL_URL, MONITOR_SINKS_HOOK_SECRET).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from monitor.alertfilter import Filter
from monitor.errors import ConfigError
from monitor.units import format_duration, parse_duration

_DAILY = re.compile(r"^(\d{1,2}):(\d{2})$")
TYPES = ("webhook", "apprise")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
_LISTS = ("rules", "tags", "sources", "languages", "kinds")
_NUMBERS = {
    "rate_per_minute": 0.0,  # 0: no limit
    "timeout": 10.0,  # seconds per request
    "attempts": 4,  # tries per delivery, with exponential backoff
    "backoff": 0.5,  # seconds before the second try; doubles
    "trip_after": 5,  # failed deliveries in a row that pause the endpoint
    "pause": 30.0,  # seconds of the first pause; doubles up to 15 minutes
    "claim_idle": 60.0,  # seconds before an unacked alert is handed out again
    "max_deliveries": 5,  # then it goes to the dead letters
}
_STRINGS = ("name", "type", "url", "secret", "min_severity", "digest", "group", "start", "updates")
STARTS = ("now", "retained")
KEYS = frozenset((*_STRINGS, *_LISTS, *_NUMBERS))


@dataclass(frozen=True, slots=True, kw_only=True)
class SinkConfig:
    name: str
    type: str
    url: str = field(repr=False)  # Apprise URLs carry tokens and passwords
    secret: str = field(default="", repr=False)  # webhook signing key
    filter: Filter = field(default_factory=Filter)
    digest: Schedule | None = None
    group: str = ""  # default sink:<name>
    # Where a new sink's group starts: "now" (alerts published from its first run on; a
    # Slack channel added to a running deployment is not sent the retained backlog) or
    # "retained" (every alert still in the stream).
    start: str = "now"
    rate_per_minute: float = 0.0
    timeout: float = 10.0
    attempts: int = 4
    backoff: float = 0.5
    trip_after: int = 5
    pause: float = 30.0
    claim_idle: float = 60.0
    max_deliveries: int = 5

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigError(f"bad sink name {self.name!r}: use a-z, 0-9, '-' and '_'")
        if self.start not in STARTS:
            raise ConfigError(f"start: expected now or retained, got {self.start!r}")
        if self.type not in TYPES:
            raise ConfigError(f"type: expected webhook or apprise, got {self.type!r}")
        if not self.url:
            raise ConfigError("url: required (or MONITOR_SINKS_<NAME>_URL)")
        if self.type == "webhook" and not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"url: a webhook needs an http(s) URL, got {redact(self.url)!r}")
        for name in ("timeout", "attempts", "trip_after", "pause"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}: must be positive, got {getattr(self, name)}")
        if min(self.rate_per_minute, self.backoff, self.claim_idle) < 0 or self.max_deliveries < 1:
            raise ConfigError(
                "rate_per_minute, backoff and claim_idle must be 0 or more, max_deliveries ≥ 1"
            )

    @property
    def consumer_group(self) -> str:
        return self.group or f"sink:{self.name}"

    @property
    def shown_url(self) -> str:
        return redact(self.url)


def redact(url: str) -> str:
    """A URL fit for logs: user info, path and query hidden (Slack, Discord and Telegram
    URLs keep their tokens in the path, e-mail ones a password in the query); scheme, host
    and port kept."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "***"
    if not parts.scheme or not parts.hostname:
        return "***"
    hidden = "/…" if (parts.path.strip("/") or parts.query or parts.username) else ""
    return f"{parts.scheme}://{parts.hostname}{port}{hidden}"


def env_name(sink: str) -> str:
    return sink.upper().replace("-", "_")


def parse_sinks(
    entries: Any, origin: str, environment: Iterable[tuple[str, str, str]] = ()
) -> tuple[SinkConfig, ...]:
    """The [[sinks]] array of the file, with MONITOR_SINKS_* overrides; `environment` gives
    (variable, rest of its name lower-cased after "sinks_", value)."""
    if not isinstance(entries, list):
        raise ConfigError(f"{origin}: sinks must be an array of tables ([[sinks]])")
    tables: list[dict[str, Any]] = []
    for n, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ConfigError(f"{origin} sink #{n}: needs a name")
        unknown = sorted(set(entry) - KEYS)
        if unknown:
            raise ConfigError(
                f"{origin} sink {entry['name']!r}: unknown key {unknown[0]!r} "
                f"(expected one of {', '.join(sorted(KEYS))})"
            )
        tables.append(dict(entry))
    names = [t["name"] for t in tables]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"{origin}: sink {name!r} is defined twice")
    by_env = sorted(((env_name(t["name"]).lower(), t) for t in tables), key=lambda p: -len(p[0]))
    for var, rest, value in environment:
        for prefix, table in by_env:
            key = rest.removeprefix(prefix + "_")
            if rest.startswith(prefix + "_") and key in KEYS - {"name"}:
                table[key] = value.split(",") if key in _LISTS else value
                break
        else:
            raise ConfigError(
                f"{var}: no sink of that name and key (sinks: {', '.join(names) or 'none'})"
            )
    sinks = []
    for table in tables:
        try:
            sinks.append(_sink(table))
        except (ConfigError, ValueError) as exc:
            raise ConfigError(f"{origin} sink {table['name']!r}: {exc}") from None
    return tuple(sinks)


def _sink(table: dict[str, Any]) -> SinkConfig:
    values: dict[str, Any] = {}
    for key in _STRINGS:
        if key in table:
            if not isinstance(table[key], str):
                raise ConfigError(f"{key} must be a string")
            values[key] = table[key].strip()
    lists = {}
    for key in _LISTS:
        value = table.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key} must be a list of strings")
        lists[key] = tuple(v.strip() for v in value if v.strip())
    for key, default in _NUMBERS.items():
        if key in table:
            values[key] = _number(key, table[key], type(default))
    digest = values.pop("digest", "")
    route = Filter(
        min_severity=values.pop("min_severity", ""),
        updates=values.pop("updates", "") or "always",
        **lists,
    )
    return SinkConfig(**values, filter=route, digest=parse_schedule(digest) if digest else None)


def _number(key: str, value: Any, kind: type) -> Any:
    if isinstance(value, bool):
        raise ConfigError(f"{key} must be a number")
    try:
        number = kind(value)
        if not math.isfinite(number) or abs(number) > 1e9:  # NaN passes every check below
            raise ValueError
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf), float(10**400)
        raise ConfigError(f"{key} must be a finite number up to 1e9, got {value!r}") from None
    if kind is int and float(value) != number:
        raise ConfigError(f"{key} must be a whole number, got {value!r}")
    return number


@dataclass(frozen=True, slots=True)
class Schedule:
    period: float = 0.0  # seconds; or
    daily_at: int = -1  # minutes after 00:00 UTC

    def window(self, when: float) -> tuple[int, int]:
        """(start, end) in Unix seconds of the window holding `when`."""
        if self.period:
            start = int(when // self.period * self.period)
            return start, int(start + self.period)
        day = datetime.fromtimestamp(when, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        boundary = day + timedelta(minutes=self.daily_at)
        if boundary.timestamp() > when:
            boundary -= timedelta(days=1)
        return int(boundary.timestamp()), int((boundary + timedelta(days=1)).timestamp())

    def describe(self) -> str:
        if self.period:
            return f"every {format_duration(self.period)}"
        return f"daily at {self.daily_at // 60:02d}:{self.daily_at % 60:02d} UTC"


def parse_schedule(text: str) -> Schedule:
    text = text.strip()
    if m := _DAILY.match(text):
        hours, minutes = int(m.group(1)), int(m.group(2))
        if hours > 23 or minutes > 59:
            raise ValueError(f"digest: no such time of day {text!r}")
        return Schedule(daily_at=hours * 60 + minutes)
    try:
        period = parse_duration(text)
    except ValueError:
        raise ValueError(
            f"digest: expected a period (30m, 1h, 1d) or a daily time (08:00), got {text!r}"
        ) from None
    if period < 1:
        raise ValueError(f"digest: the period must be at least 1s, got {text!r}")
    return Schedule(period=period)
