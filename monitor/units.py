"""Durations as people write them in settings and rules: "90m", "12h", "3d", "2w"."""

from __future__ import annotations

import re

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """Seconds in "90m", "12h", "3d" or "2w"."""
    m = DURATION.match(text)
    if not m:
        raise ValueError(f"expected a duration like 90m, 12h, 3d or 2w, got {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def format_duration(seconds: float) -> str:
    """The largest whole unit: 172800 -> "2d", 5400 -> "90m", 90 -> "90s"."""
    for unit, size in (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
