"""What the daemon knows of its own health: whether it is stopping, when its processing
loop last turned, whether Redis refuses writes, how many items failed in a row — and the
answers of /healthz (all of it) and /livez (only what a restart can fix)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import redis
import structlog

from monitor.daemon.metrics import Metrics
from monitor.store.connection import UNAVAILABLE
from monitor.store.refusals import refusal

log = structlog.get_logger("monitor.daemon")

PROCESSING, POLLS = "processing", "polls"  # where a refusal was met, and is probed again
STALE_AFTER = 60.0  # /healthz fails when the processing loop has not ticked for this long
FAILING_AFTER = 5  # /healthz fails while this many items in a row have failed


class Health:
    def __init__(self, metrics: Metrics, instance: str) -> None:
        self.metrics = metrics
        self.instance = instance
        self.stop = threading.Event()
        self.last_tick = time.monotonic()
        # Why Redis refuses writes, by where it was met, while it does: each path probes and
        # clears its own (a big script may be refused while a small heartbeat goes through).
        self.refused_in: dict[str, str] = {}
        self.refused_at = 0.0
        self.failures_in_a_row = 0
        metrics.writable.set_function(lambda: 0 if self.refused else 1)
        metrics.failing.set_function(lambda: self.failures_in_a_row)
        metrics.stalled.set_function(lambda: time.monotonic() - self.last_tick)
        metrics.healthy.set_function(lambda: 0 if self.problems() else 1)

    def tick(self) -> float:
        """The loop turned (or waits on something that is not stuck); the time."""
        self.last_tick = now = time.monotonic()
        return now

    @property
    def refused(self) -> str | None:
        """Why Redis refuses writes (the first reason met), while it does."""
        return next(iter(self.refused_in.values()), None)

    def write_refused(self, reason: str, exc: BaseException, where: str = PROCESSING) -> None:
        """Redis answers but refuses writes (met `where`): said once, counted, shown by
        /healthz; items in hand stay pending with this daemon, polls wait, until writes
        succeed again."""
        first = self.refused is None
        self.refused_in.setdefault(where, reason)
        if not first:
            return
        self.refused_at = time.monotonic()
        self.metrics.refusals.labels(reason).inc()
        log.error(
            "redis_refuses_writes",
            reason=reason,
            error=str(exc).splitlines()[0],
            hint="free memory, raise maxmemory or fix the replica/disk; the daemon "
            "resumes by itself",
        )

    def writable_again(self, where: str = PROCESSING) -> None:
        """A write refused `where` went through: once none is refused, said once."""
        reason = self.refused_in.pop(where, None)
        if reason is None or self.refused_in:
            return
        log.info(
            "redis_writable_again",
            reason=reason,
            after_s=round(time.monotonic() - self.refused_at, 1),
        )

    def problems(self) -> list[str]:
        """What is wrong, from the daemon's own state (no Redis call)."""
        problems = []
        if self.refused is not None:
            problems.append(f"Redis refuses writes: {self.refused}")
        if self.failures_in_a_row >= FAILING_AFTER:
            problems.append(f"{self.failures_in_a_row} items failed in a row")
        stale = time.monotonic() - self.last_tick
        if stale >= STALE_AFTER:
            problems.append(f"processing loop has not turned for {stale:.0f} s")
        if self.stop.is_set():
            problems.append("stopping")
        return problems

    def liveness(self) -> tuple[bool, dict]:
        """Alive while the processing loop turns (it does while it waits for Redis)."""
        stale = time.monotonic() - self.last_tick
        ok = stale < STALE_AFTER
        return ok, {
            "status": "ok" if ok else "unhealthy",
            "reason": None if ok else f"processing loop has not turned for {stale:.0f} s",
            "loop_seconds_ago": round(stale, 1),
            "instance": self.instance,
        }

    def health(self, client: redis.Redis, heartbeat: Callable[[], None]) -> tuple[bool, dict]:
        """Healthy while Redis answers and accepts a write (the heartbeat), items do not
        fail in a row and the loop turns; the reasons otherwise."""
        redis_ok, unreachable = True, "Redis unreachable"
        try:
            client.ping()
            heartbeat()  # a write: an out-of-memory Redis still answers PING
        except UNAVAILABLE as exc:
            redis_ok = False
            if (found := refusal(exc)) is not None:  # NOAUTH, WRONGPASS: the user's, said
                unreachable = f"Redis unreachable: {found.reason}"
        except redis.RedisError as exc:
            found = refusal(exc)
            if found is not None and found.writes_refused:
                self.write_refused(found.reason, exc)
        problems = ([] if redis_ok else [unreachable]) + self.problems()
        return not problems, {
            "status": "unhealthy" if problems else "ok",
            "reason": "; ".join(problems) or None,
            "redis": redis_ok,
            "redis_writable": redis_ok and self.refused is None,
            "failures_in_a_row": self.failures_in_a_row,
            "loop_seconds_ago": round(time.monotonic() - self.last_tick, 1),
            "instance": self.instance,
        }
