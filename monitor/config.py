"""Settings: defaults, then monitor.toml, then MONITOR_* environment variables, then CLI flags.

One frozen object, validated once at start and passed in; nothing below reads the
environment itself.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.errors import ConfigError


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    redis_url: str = ""  # empty: start the embedded redis-server under data_dir
    prefix: str = "monitor:"
    rules_dir: Path = Path("rules")
    data_dir: Path = Path(".monitor")
    story_window_hours: float = 72.0
    near_duplicate_threshold: float = 0.5  # estimated Jaccard of word 3-gram shingles
    story_threshold: float = 0.35  # weighted cosine of salient terms
    alerts_maxlen: int = 100_000  # approximate MAXLEN of the alerts stream
    alert_id_ttl_days: float = 30.0  # how long a published alert id blocks a repeat
    log_level: str = "warning"

    def __post_init__(self) -> None:
        if not self.prefix or any(c.isspace() for c in self.prefix):
            raise ConfigError(f"prefix: must be non-empty without spaces, got {self.prefix!r}")
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(
                f"redis_url: expected redis://, rediss:// or unix://, got {self.redis_url!r}"
            )
        for name in ("near_duplicate_threshold", "story_threshold"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ConfigError(f"{name}: must be in (0, 1], got {value}")
        for name in ("story_window_hours", "alert_id_ttl_days", "alerts_maxlen"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}: must be positive, got {getattr(self, name)}")
        if self.log_level.lower() not in {"debug", "info", "warning", "error"}:
            raise ConfigError(
                f"log_level: expected debug, info, warning or error, got {self.log_level!r}"
            )

    @property
    def window_seconds(self) -> int:
        return int(self.story_window_hours * 3600)


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _coerce(name: str, value: Any, origin: str) -> Any:
    default = getattr(Settings(), name)
    kind = Path if isinstance(default, Path) else type(default)
    try:
        if kind is Path and isinstance(value, str | Path):
            return Path(value)
        if kind is float and not isinstance(value, bool):
            return float(value)
        if kind is int and not isinstance(value, bool):
            return int(value)
        if kind is str and isinstance(value, str):
            return value
    except (TypeError, ValueError):
        pass
    raise ConfigError(f"{origin}: {name} expects a {kind.__name__}, got {value!r}")


def load(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build the settings. Unknown keys are errors, named with where they came from."""
    values: dict[str, Any] = {}
    if path is not None:
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"{path}: no such file") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        for key, value in table.items():
            if key not in _FIELDS:
                raise ConfigError(f"{path}: unknown setting {key!r}")
            values[key] = _coerce(key, value, str(path))
    for var, value in (os.environ if env is None else env).items():
        if not var.startswith("MONITOR_"):
            continue
        key = var.removeprefix("MONITOR_").lower()
        if key in _FIELDS:
            values[key] = _coerce(key, value, var)
    for key, value in overrides.items():
        if value is not None:
            values[key] = _coerce(key, value, f"--{key.replace('_', '-')}")
    return Settings(**values)
