"""A progress line for long replays and backfills: count, rate and ETA on a terminal;
nothing when output is JSON or stderr is not a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 24


class Progress:
    def __init__(
        self,
        total: int | None,
        label: str,
        *,
        enabled: bool | None = None,
        stream: TextIO | None = None,
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total = total
        self.label = label
        self.done = 0
        self.started = time.monotonic()
        self._shown = 0.0

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and (now - self._shown >= 0.1 or self.done == self.total):
            self._shown = now
            self.stream.write("\r" + self.line(now))
            self.stream.flush()

    def line(self, now: float | None = None) -> str:
        elapsed = max((now or time.monotonic()) - self.started, 1e-9)
        rate = self.done / elapsed
        if self.total:
            filled = int(WIDTH * min(self.done / self.total, 1))
            bar = "[" + "#" * filled + "." * (WIDTH - filled) + "]"
            left = (self.total - self.done) / rate if rate else 0
            return f"{self.label} {bar} {self.done}/{self.total} {rate:.1f}/s ETA {_clock(left)}"
        return f"{self.label} {self.done} {rate:.1f}/s"

    def close(self) -> None:
        if self.enabled and self.done:
            self.stream.write(
                "\r" + self.line() + f" in {_clock(time.monotonic() - self.started)}\n"
            )
            self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
