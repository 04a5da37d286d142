"""Settings: defaults, then monitor.toml, then MONITOR_* environment variables, then CLI flags.

One frozen object, validated once at start and passed in; nothing below reads the
environment itself. Relative paths in the file (rules_dir, state_dir) are relative to the
file; the embedded Redis's state defaults to `.monitor/` beside it. Sections of the file
([http], [schedule], [daemon], [alerts], [web]) are overridden by MONITOR_<SECTION>_<KEY>, top-level
keys by MONITOR_<KEY>.

`settings` holds the sections (frozen, validated on construction), `load` builds them from
their sources.

May import: the vocabulary below it (`sinkconfig`, `alertfilter`, `units`, `errors`).
"""

from monitor.config.load import STATE_DIR, load
from monitor.config.settings import (
    AlertSettings,
    DaemonSettings,
    FeedConfig,
    HttpSettings,
    ScheduleSettings,
    Settings,
    WebSettings,
)
from monitor.units import parse_duration

__all__ = [
    "STATE_DIR",
    "AlertSettings",
    "DaemonSettings",
    "FeedConfig",
    "HttpSettings",
    "ScheduleSettings",
    "Settings",
    "WebSettings",
    "load",
    "parse_duration",
]
