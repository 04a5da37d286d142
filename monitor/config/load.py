"""Where settings come from: defaults, then monitor.toml, then MONITOR_* environment
variables, then CLI flags. Unknown keys are errors naming where they came from, with a hint
of the key meant."""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from monitor.config.settings import (
    AlertSettings,
    BreakingSettings,
    DaemonSettings,
    FeedConfig,
    HttpSettings,
    ScheduleSettings,
    Settings,
    WebSettings,
)
from monitor.errors import ConfigError
from monitor.sinkconfig import parse_sinks
from monitor.units import DURATION, parse_duration

_SECTIONS = {
    "http": HttpSettings,
    "schedule": ScheduleSettings,
    "daemon": DaemonSettings,
    "alerts": AlertSettings,
    "breaking": BreakingSettings,
    "web": WebSettings,
}
_RENAMED = {"data_dir": "state_dir"}  # old top-level names still accepted
STATE_DIR = ".monitor"


# Settings in seconds, which also take a duration ("48h", "2d", "2 weeks"); the other
# numbers (story_window_hours, thresholds, …) are plain numbers in their own unit.
_SECONDS = frozenset(
    {
        "connect_timeout",
        "read_timeout",
        "interval",
        "min_interval",
        "max_interval",
        "max_backoff",
        "claim_idle",
        "rules_check",
        "max_age",
        "durable_hold",
    }
)
_EXPECTED = {
    float: "a number",
    int: "a whole number",
    bool: "true or false",
    str: "a string",
    tuple: "a list of strings",
    Path: "a path",
}


def _coerce(cls: type, name: str, value: Any, origin: str) -> Any:
    default = getattr(cls(), name)
    kind = Path if isinstance(default, Path) else type(default)
    duration = kind is float and name in _SECONDS
    expected = (
        "a duration like 48h, 2d, 2w or seconds"
        if duration
        else _EXPECTED.get(kind, f"a {kind.__name__}")
    )
    if isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"{origin}: {name} expects {expected}, got {value!r}")
    try:
        if kind is Path and isinstance(value, str | Path):
            return Path(value)
        if kind is bool and isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                return value.lower() in ("1", "true", "yes", "on")
        elif duration and isinstance(value, str) and DURATION.match(value):
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
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf), float(10**400)
        pass
    raise ConfigError(f"{origin}: {name} expects {expected}, got {value!r}")


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
            # repr: a key may hold any character, a newline too, and the message is one line
            raise ConfigError(f"{where}: unknown setting {prefix + key!r}{hint}")
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
