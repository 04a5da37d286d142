"""`monitor run` as a child process, for tests that drive the daemon from outside."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


class Daemon:
    def __init__(self, cfg: Path, redis_url: str, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
        env["MONITOR_REDIS_URL"] = redis_url
        self.log = log
        self._read = 0  # bytes of the log parsed into _events (whole lines only)
        self._events: list[dict] = []
        with log.open("w") as stderr:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "monitor", "--config", str(cfg), "run"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                cwd=cfg.parent,
            )

    def events(self, name: str) -> list[dict]:
        """The events of that name logged so far. The log is read from where the last call
        stopped (tests poll this ten times a second while a daemon logs thousands of lines)."""
        with self.log.open("rb") as f:
            f.seek(self._read)
            chunk = f.read()
        # A line still being written waits, unless the daemon is gone.
        whole = chunk if self.proc.poll() is not None else chunk[: chunk.rfind(b"\n") + 1]
        self._read += len(whole)
        for line in whole.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                self._events.append(event)
        return [event for event in self._events if event.get("event") == name]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)


def wait_for(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.1)


def embedded_redis_running(state_dir: Path, pid: int) -> bool:
    """Whether the embedded redis-server of `state_dir` (its pid read while it ran) is still
    alive or answering: its socket is there, or the process is (and is no zombie)."""
    if (state_dir / "redis.sock").exists():
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z" and b"redis-server" in cmdline


def stop_embedded_redis(pid: int) -> None:
    """Clean up after a failed test: the server is a daemon of its own."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
