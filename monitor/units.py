"""Durations as people write them in settings and rules: "90m", "12h", "3d", "2w", or in
words: "90 minutes", "12 hours", "3 days", "2 weeks"; elapsed times as people read them
("4.2 h"); and counts with their nouns ("1 report", "2 reports"), for the CLI and the desk."""

from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# Each unit's other spellings. No "mo"/"month": "m" is minutes, and a month has no one length.
_WORDS = {
    "s": ("sec", "secs", "second", "seconds"),
    "m": ("min", "mins", "minute", "minutes"),
    "h": ("hr", "hrs", "hour", "hours"),
    "d": ("day", "days"),
    "w": ("wk", "wks", "week", "weeks"),
}
_SPELLING = {word: unit for unit, words in _WORDS.items() for word in (unit, *words)}
DURATION = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(" + "|".join(sorted(_SPELLING, key=len, reverse=True)) + r")\s*$",
    re.IGNORECASE,
)


def parse_duration(text: str) -> float:
    """Seconds in "90m", "12h", "3d", "2w" (or "90 minutes", "12 hours", "3 days", "2 weeks")."""
    m = DURATION.match(text)
    if not m:
        raise ValueError(f"expected a duration like 90m, 12h, 3d or 2w, got {text!r}")
    return float(m.group(1)) * _UNITS[_SPELLING[m.group(2).lower()]]


def format_duration(seconds: float) -> str:
    """A duration as settings write it, in the largest whole unit: 5400 -> "90m",
    172800 -> "48h", 259200 -> "3d", 90 -> "90s".

    Days from three on: one and two days read as the settings write them (24h, 48h). No
    weeks: "14d", not "2w"."""
    if seconds > 2 * 86400 and seconds % 86400 == 0:
        return f"{int(seconds // 86400)}d"
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def format_age(seconds: float) -> str:
    """An elapsed time, rounded for people: "45 s", "12 min", "4.2 h", "2.5 d"."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def counted(count: int, one: str, many: str = "") -> str:
    """A count with its noun in the right number: "1 report", "2 reports", "10,000 stories"."""
    return f"{count:,} {plural(count, one, many)}"


def plural(count: int, one: str, many: str = "") -> str:
    """The noun for `count` of it: `one` for 1, else `many` (default: `one` + "s")."""
    return one if count == 1 else many or one + "s"
