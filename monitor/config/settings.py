"""The settings, section by section: frozen dataclasses that validate themselves on
construction (`Settings` holds them all). Where they come from is `monitor.config.load`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit

from monitor.errors import ConfigError
from monitor.sinkconfig import SinkConfig

_LEVELS = ("debug", "info", "warning", "error")


def _check_listen(listen: str) -> None:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"listen: expected HOST:PORT, got {listen!r}")


# Beyond these a setting is no real choice (1e9 seconds: 31 years), and its value in
# milliseconds would overflow what Redis and int() take.
_LARGEST = 2**63 - 1
_LARGEST_FLOAT = 1e9


def _in_range(obj: object) -> None:
    """Every number of `obj` finite and of a size its uses can take: NaN passes the
    comparisons of the checks below, infinity overflows them on use."""
    for f in fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if isinstance(value, float) and not (math.isfinite(value) and abs(value) <= _LARGEST_FLOAT):
            raise ConfigError(f"{f.name}: expected a finite number up to 1e9, got {value}")
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _LARGEST:
            raise ConfigError(f"{f.name}: expected a number up to 2**63-1, got {value}")


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
        _in_range(self)
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
        _in_range(self)
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
        _in_range(self)
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
    # The daemon shows an alert to consumers only once it is this old, so that the writes
    # behind it (its story, its claim) are on disk: a crash that rolls Redis back cannot
    # then make the daemons found a second story, and a second `new`, for what consumers
    # saw. Applied when Redis may lose the last writes (AOF with appendfsync everysec or
    # no, or when it will not say); never with appendfsync always or without AOF. 0: off.
    durable_hold: float = 2.0  # seconds

    def __post_init__(self) -> None:
        _in_range(self)
        if self.max_age < 0:
            raise ConfigError(f"max_age: must be 0 (off) or more, got {self.max_age}")
        if self.durable_hold < 0:
            raise ConfigError(f"durable_hold: must be 0 (off) or more, got {self.durable_hold}")


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakingSettings:
    """When a story breaks (monitor/dedup/breaking.py; docs/design.md "Breaking stories"):
    its reports in the last `window_minutes` of report time, from `min_sources` outlets at
    least, are at most `p_value` likely under a Poisson expectation from its own earlier
    rate and the stream's background over `lookback_hours` (at least `min_expected`)."""

    window_minutes: float = 60.0
    lookback_hours: float = 24.0
    min_sources: int = 3
    min_reports: int = 4
    min_expected: float = 1.0
    p_value: float = 0.001

    def __post_init__(self) -> None:
        _in_range(self)
        _positive(self, "window_minutes", "lookback_hours", "min_sources", "min_reports")
        _positive(self, "min_expected")
        if not 10 <= self.window_minutes <= 24 * 60 or self.window_minutes % 10:
            raise ConfigError(
                "window_minutes: must be a multiple of 10 from 10 to 1440, got "
                f"{self.window_minutes}"
            )
        if not self.lookback_hours * 60 > self.window_minutes:
            raise ConfigError(
                f"lookback_hours: must be longer than the window, got {self.lookback_hours}"
            )
        if not 0.0 < self.p_value < 1.0:
            raise ConfigError(f"p_value: must be in (0, 1), got {self.p_value}")


@dataclass(frozen=True, slots=True, kw_only=True)
class WebSettings:
    listen: str = "127.0.0.1:8080"  # `monitor web`
    # Write actions (pause a feed, poll it now, mute a story or a source for a rule) need it;
    # empty: the desk is read-only. Set it from the environment: MONITOR_WEB_TOKEN.
    token: str = field(default="", repr=False)
    # How long a sign-in lasts (each sign-in opens its own session; signing out ends it).
    session_hours: float = 12.0
    # Also serve the desk from `monitor run`, on daemon.listen beside /healthz and /metrics.
    in_daemon: bool = False

    def __post_init__(self) -> None:
        _in_range(self)
        _check_listen(self.listen)
        _positive(self, "session_hours")
        if not self.session_hours < float("inf"):  # nor NaN
            raise ConfigError(f"session_hours: must be a finite number, got {self.session_hours}")


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedConfig:
    url: str
    name: str = ""
    interval: float | None = None  # None: adaptive, starting at schedule.interval
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _in_range(self)
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
    # At most one `breaking` per story and rule this often (of report time).
    breaking_quiet_hours: float = 12.0
    retention_days: float = 7.0  # processed items are kept this long for backfills
    retention_max_items: int = 100_000  # and at most about this many (~6 KB each)
    webhook_secret: str = field(default="", repr=False)  # HMAC key of `monitor forward`
    log_level: str = ""  # empty: the command's default (info for run, warning otherwise)
    http: HttpSettings = field(default_factory=HttpSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    breaking: BreakingSettings = field(default_factory=BreakingSettings)
    web: WebSettings = field(default_factory=WebSettings)
    feeds: tuple[FeedConfig, ...] = ()
    sinks: tuple[SinkConfig, ...] = ()  # [[sinks]]: where `monitor forward` delivers

    def __post_init__(self) -> None:
        _in_range(self)
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
        if self.breaking_quiet_hours < 0:
            raise ConfigError(
                f"breaking_quiet_hours: must be 0 or more, got {self.breaking_quiet_hours}"
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
