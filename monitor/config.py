"""Settings: defaults, then monitor.toml, then MONITOR_* environment variables, then CLI flags.

One frozen object, validated once at start and passed in; nothing below reads the
environment itself. Relative paths in the file (rules_dir, state_dir) are relative to the
file; the embedded Redis's state defaults to `.monitor/` beside it. Sections of the file
([http], [schedule], [daemon], [alerts], [web]) are overridden by MONITOR_<SECTION>_<KEY>, top-level
keys by MONITOR_<KEY>.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from monitor.errors import ConfigError
from monitor.sinkconfig import SinkConfig, parse_sinks
from monitor.units import DURATION, parse_duration

_LEVELS = ("debug", "info", "warning", "error")


def _check_listen(listen: str) -> None:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"listen: expected HOST:PORT, got {listen!r}")


def _positive(obj: object, *names: str) -> None:
    for name in names:
        if getattr(obj, name) <= 0:
            raise ConfigError(f"{name}: must be positive, got {getattr(obj, name)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpSettings:
    connect_timeout: float = 10.0
    read_timeout: float = 30.0  # per read, and the whole response may take 2x this
    max_bytes: int = 10 * 1024 * 1024  # after decompression
    max_redirects: int = 5
    per_host: int = 2  # concurrent requests to one host
    user_agent: str = "news-monitor/0.1 (+https://github.com/news-monitor)"
    # Address guard: links found in feeds (and redirects) may not lead to loopback, private,
    # link-local or reserved addresses, except on these hosts. The hosts of configured feeds
    # are always allowed: the operator chose them.
    allow_hosts: tuple[str, ...] = ()
    allow_private: bool = False  # switch the guard off entirely

    def __post_init__(self) -> None:
        _positive(self, "connect_timeout", "read_timeout", "max_bytes", "per_host")
        if self.max_redirects < 0:
            raise ConfigError(f"max_redirects: must be 0 or more, got {self.max_redirects}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleSettings:
    interval: float = 900.0  # seconds: the first interval of a feed that sets none
    min_interval: float = 60.0
    max_interval: float = 6 * 3600.0
    max_backoff: float = 24 * 3600.0  # errors back off exponentially up to this
    jitter: float = 0.1  # fraction of the interval, either way
    workers: int = 16  # concurrent polls

    def __post_init__(self) -> None:
        _positive(self, "interval", "min_interval", "max_interval", "max_backoff", "workers")
        if not self.min_interval <= self.interval <= self.max_interval:
            raise ConfigError(
                f"interval: must lie between min_interval ({self.min_interval}) and "
                f"max_interval ({self.max_interval}), got {self.interval}"
            )
        if not 0 <= self.jitter < 1:
            raise ConfigError(f"jitter: must be in [0, 1), got {self.jitter}")


@dataclass(frozen=True, slots=True, kw_only=True)
class DaemonSettings:
    listen: str = "127.0.0.1:9108"  # /healthz and /metrics; "" disables
    consumer: str = ""  # consumer name in the items group; default host-pid
    batch: int = 16  # items read from the stream at once
    claim_idle: float = 60.0  # seconds before another daemon re-claims a pending item
    max_deliveries: int = 5  # then the item goes to the dead-letter stream
    items_maxlen: int = 1_000_000
    seen_per_feed: int = 10_000  # entry ids remembered per feed
    max_entries: int = 1_000  # entries taken from one poll of a feed; the rest are skipped
    rules_check: float = 30.0  # seconds between checks of the rules directory

    def __post_init__(self) -> None:
        _positive(
            self,
            *("batch", "claim_idle", "max_deliveries", "items_maxlen", "seen_per_feed"),
            "max_entries",
        )
        if self.listen:
            _check_listen(self.listen)


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertSettings:
    # A report older than this when first seen raises no alert (it is still placed in its
    # story and retained); also the recent part of a new feed's back catalogue. 0: off.
    max_age: float = 48 * 3600.0  # seconds; "48h", "2d" are accepted too

    def __post_init__(self) -> None:
        if self.max_age < 0:
            raise ConfigError(f"max_age: must be 0 (off) or more, got {self.max_age}")


@dataclass(frozen=True, slots=True, kw_only=True)
class WebSettings:
    listen: str = "127.0.0.1:8080"  # `monitor web`
    # Write actions (pause a feed, poll it now, mute a story or a source for a rule) need it;
    # empty: the desk is read-only. Set it from the environment: MONITOR_WEB_TOKEN.
    token: str = field(default="", repr=False)
    # Also serve the desk from `monitor run`, on daemon.listen beside /healthz and /metrics.
    in_daemon: bool = False

    def __post_init__(self) -> None:
        _check_listen(self.listen)


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedConfig:
    url: str
    name: str = ""
    interval: float | None = None  # None: adaptive, starting at schedule.interval
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        try:
            parts = urlsplit(self.url)
            parts.port  # noqa: B018 (raises on a bad port)
        except ValueError as exc:
            raise ConfigError(f"feeds: bad url {self.url!r} ({exc})") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"feeds: url must be an http(s) URL, got {self.url!r}")
        if self.interval is not None and self.interval <= 0:
            raise ConfigError(f"feeds: interval of {self.url} must be positive")


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    redis_url: str = field(default="", repr=False)  # may hold a password; empty: embedded
    redis_allow_eviction: bool = False  # UNSAFE: run on a Redis that may evict keys
    prefix: str = "monitor:"
    rules_dir: Path = Path("rules")  # relative in the file: to the file
    # The embedded Redis's socket, AOF and log. Default: `.monitor/` beside the --config
    # file (in the working directory without one); relative in the file: to the file.
    state_dir: Path = Path(".monitor")
    story_window_hours: float = 168.0  # a story closes after this long without a report
    near_duplicate_threshold: float = 0.5  # estimated Jaccard of word 3-gram shingles
    story_threshold: float = 0.5  # the story model's probability that a report joins a story
    alerts_maxlen: int = 100_000  # approximate MAXLEN of the alerts stream
    alerts_max_age_days: float = 0.0  # also drop alerts older than this; 0: no age limit
    alert_id_ttl_days: float = 30.0  # how long a published alert id blocks a repeat
    update_quiet_minutes: float = 60.0  # at most one `update` per story and rule this often
    retention_days: float = 7.0  # processed items are kept this long for backfills
    retention_max_items: int = 100_000  # and at most about this many (~6 KB each)
    webhook_secret: str = field(default="", repr=False)  # HMAC key of `monitor forward`
    log_level: str = ""  # empty: the command's default (info for run, warning otherwise)
    http: HttpSettings = field(default_factory=HttpSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    web: WebSettings = field(default_factory=WebSettings)
    feeds: tuple[FeedConfig, ...] = ()
    sinks: tuple[SinkConfig, ...] = ()  # [[sinks]]: where `monitor forward` delivers

    def __post_init__(self) -> None:
        if not self.prefix or any(c.isspace() or c in "*?[]{}" for c in self.prefix):
            raise ConfigError(  # braces would make the prefix a hash tag: one cluster slot
                "prefix: must be non-empty, without spaces, glob characters or braces, got "
                f"{self.prefix!r}"
            )
        if self.redis_url and not self.redis_url.startswith(
            ("redis://", "rediss://", "unix://", "redis+sentinel://", "rediss+sentinel://")
        ):
            raise ConfigError(
                "redis_url: expected redis://, rediss://, unix:// or redis+sentinel://, got "
                f"{self.redis_url!r}"
            )
        for name in ("near_duplicate_threshold", "story_threshold"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ConfigError(f"{name}: must be in (0, 1], got {value}")
        _positive(
            self,
            "story_window_hours",
            "alert_id_ttl_days",
            "alerts_maxlen",
            "retention_days",
            "retention_max_items",
        )
        if self.update_quiet_minutes < 0:
            raise ConfigError(
                f"update_quiet_minutes: must be 0 or more, got {self.update_quiet_minutes}"
            )
        if self.alerts_max_age_days < 0:
            raise ConfigError(
                f"alerts_max_age_days: must be 0 or more, got {self.alerts_max_age_days}"
            )
        if self.log_level and self.log_level.lower() not in _LEVELS:
            raise ConfigError(
                f"log_level: expected one of {', '.join(_LEVELS)}, got {self.log_level!r}"
            )
        urls = [f.url for f in self.feeds]
        if len(set(urls)) != len(urls):
            duplicate = next(u for u in urls if urls.count(u) > 1)
            raise ConfigError(f"feeds: {duplicate} is listed twice")

    @property
    def window_seconds(self) -> int:
        return int(self.story_window_hours * 3600)


_SECTIONS = {
    "http": HttpSettings,
    "schedule": ScheduleSettings,
    "daemon": DaemonSettings,
    "alerts": AlertSettings,
    "web": WebSettings,
}
_RENAMED = {"data_dir": "state_dir"}  # old top-level names still accepted
STATE_DIR = ".monitor"


def _coerce(cls: type, name: str, value: Any, origin: str) -> Any:
    default = getattr(cls(), name)
    kind = Path if isinstance(default, Path) else type(default)
    if isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"{origin}: {name} expects a {kind.__name__}, got {value!r}")
    try:
        if kind is Path and isinstance(value, str | Path):
            return Path(value)
        if kind is bool and isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                return value.lower() in ("1", "true", "yes", "on")
        elif kind is float and isinstance(value, str) and DURATION.match(value):
            return parse_duration(value)
        elif kind in (float, int) and isinstance(value, str | int | float):
            number = kind(value)
            if kind is int and isinstance(value, float) and value != number:
                raise ValueError
            return number
        elif kind is tuple and isinstance(value, list | str):
            items = value.split(",") if isinstance(value, str) else value
            if all(isinstance(i, str) for i in items):
                return tuple(i.strip() for i in items if i.strip())
        elif isinstance(value, kind):
            return value
    except (TypeError, ValueError):
        pass
    raise ConfigError(f"{origin}: {name} expects a {kind.__name__}, got {value!r}")


def _known(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _env_hint(key: str) -> str:
    """ " (did you mean MONITOR_X?)" for the variable closest to a misspelt one, if any."""
    names = [f"{s}_{k}" for s, cls in _SECTIONS.items() for k in _known(cls)]
    names += [k for k in _known(Settings) if k not in (*_SECTIONS, "feeds", "sinks")]
    close = difflib.get_close_matches(key, names, n=1)
    return f" (did you mean MONITOR_{close[0].upper()}?)" if close else ""


def _section(cls: type, table: Any, origin: str, section: str = "") -> dict[str, Any]:
    where = f"{origin} [{section}]" if section else origin
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table")
    values = {}
    for key, value in table.items():
        if key not in _known(cls) or (not section and key in (*_SECTIONS, "feeds", "sinks")):
            prefix = f"{section}." if section else ""
            close = difflib.get_close_matches(key, sorted(_known(cls)), n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
            raise ConfigError(f"{where}: unknown setting '{prefix}{key}'{hint}")
        values[key] = _coerce(cls, key, value, where)
    return values


def _feeds(entries: Any, origin: str) -> tuple[FeedConfig, ...]:
    if not isinstance(entries, list):
        raise ConfigError(f"{origin}: feeds must be an array of tables ([[feeds]])")
    feeds = []
    for n, entry in enumerate(entries, 1):
        where = f"{origin} feed #{n}"
        if not isinstance(entry, dict) or "url" not in entry:
            raise ConfigError(f"{where}: needs a url")
        unknown = set(entry) - {"url", "name", "interval", "tags"}
        if unknown:
            raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}")
        tags = entry.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ConfigError(f"{where}: tags must be a list of strings")
        interval = entry.get("interval")
        if interval is not None and (
            isinstance(interval, bool) or not isinstance(interval, int | float)
        ):
            raise ConfigError(f"{where}: interval must be a number of seconds")
        if not isinstance(entry["url"], str) or not isinstance(entry.get("name", ""), str):
            raise ConfigError(f"{where}: url and name must be strings")
        try:
            feeds.append(
                FeedConfig(
                    url=entry["url"].strip(),
                    name=entry.get("name", ""),
                    interval=float(interval) if interval is not None else None,
                    tags=tuple(tags),
                )
            )
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return tuple(feeds)


def load(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build the settings. Unknown keys are errors, named with where they came from."""

    top: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
    feeds: tuple[FeedConfig, ...] = ()
    sink_tables: Any = []
    sink_origin = "MONITOR_SINKS_*"
    sink_env: list[tuple[str, str, str]] = []
    if path is not None:
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"{path}: no such file") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        for name, cls in _SECTIONS.items():
            sections[name] = _section(cls, table.pop(name, {}), str(path), name)
        feeds = _feeds(table.pop("feeds", []), str(path))
        sink_tables, sink_origin = table.pop("sinks", []), str(path)
        for old, new in _RENAMED.items():
            if old in table:
                if new in table:
                    raise ConfigError(f"{path}: {old!r} is the old name of {new!r}: give one")
                table[new] = table.pop(old)
        top = _section(Settings, table, str(path))
        # Paths in the file, and the state, follow the file, not the working directory.
        top["state_dir"] = path.parent / top.get("state_dir", STATE_DIR)
        if "rules_dir" in top:
            top["rules_dir"] = path.parent / top["rules_dir"]
    for var, value in (os.environ if env is None else env).items():
        if not var.startswith("MONITOR_"):
            continue
        key = var.removeprefix("MONITOR_").lower()
        key = _RENAMED.get(key, key)
        if key.startswith("sinks_"):  # MONITOR_SINKS_<NAME>_<KEY>: secrets of a [[sinks]]
            sink_env.append((var, key.removeprefix("sinks_"), value))
            continue
        section = next((s for s in _SECTIONS if key.startswith(s + "_")), None)
        if section and key.removeprefix(section + "_") in _known(_SECTIONS[section]):
            name = key.removeprefix(section + "_")
            sections[section][name] = _coerce(_SECTIONS[section], name, value, var)
        elif key in _known(Settings) and key not in (*_SECTIONS, "feeds", "sinks"):
            top[key] = _coerce(Settings, key, value, var)
        else:
            raise ConfigError(f"{var}: no such setting{_env_hint(key)}")
    for key, value in overrides.items():
        if value is not None:
            top[key] = _coerce(Settings, key, value, f"--{key.replace('_', '-')}")
    built = {}
    for name, cls in _SECTIONS.items():
        try:
            built[name] = cls(**sections[name])
        except ConfigError as exc:
            raise ConfigError(f"{name}.{exc}") from None
    sinks = parse_sinks(sink_tables, sink_origin, sink_env)
    return Settings(**top, **built, feeds=feeds, sinks=sinks)
