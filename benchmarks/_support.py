"""Shared by the benchmark scripts: a throwaway redis-server and a loopback feed server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import redis

from monitor.store.embedded import find_redis_server

ROOT = Path(__file__).resolve().parent.parent

Handler = Callable[[str, dict[str, str]], tuple[int, dict[str, str], bytes]]


@contextmanager
def redis_server(*, aof: bool = False, realtime: bool = False) -> Iterator[str]:
    """A redis-server on a temporary unix socket; yields its URL. `aof`: persisted as a
    deployment should be (AOF, `appendfsync everysec`), else in memory only. `realtime`:
    scheduled first (SCHED_FIFO, where allowed), so that on a shared, busy machine its CPU
    per command is not inflated by being preempted mid-command (its own figures then
    compare across runs; the rest of the run still shares the cores)."""
    directory = Path(tempfile.mkdtemp(prefix="monitor-bench-"))
    socket = directory / "redis.sock"
    process = subprocess.Popen(
        [
            str(find_redis_server()),
            "--port",
            "0",
            "--unixsocket",
            str(socket),
            "--save",
            "",
            "--appendonly",
            "yes" if aof else "no",
            "--appendfsync",
            "everysec",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
    )
    if realtime:
        try:
            os.sched_setscheduler(process.pid, os.SCHED_FIFO, os.sched_param(10))
        except (PermissionError, OSError) as error:
            print(f"redis-server not scheduled first: {error}", file=sys.stderr)
    try:
        client = redis.Redis(unix_socket_path=str(socket))
        for _ in range(500):
            try:
                client.ping()
                break
            except (redis.ConnectionError, FileNotFoundError):
                time.sleep(0.01)
        yield f"unix://{socket}"
    finally:
        process.terminate()
        process.wait()
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def http_server(handler: Handler) -> Iterator[str]:
    """A threaded HTTP/1.1 server on 127.0.0.1; yields its base URL."""

    class Request(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            status, headers, body = handler(
                self.path, {k.lower(): v for k, v in self.headers.items()}
            )
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # the body is read and dropped; answered as a GET
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.do_GET()

        def log_message(self, format: str, *args: object) -> None:
            pass

    ThreadingHTTPServer.request_queue_size = 1024
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Request)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def start_daemon(
    config: Path, redis_url: str, log: Path, *, code: Path | None = None
) -> subprocess.Popen:
    """`monitor run` in a process of its own; `code`: run the `monitor` package of that
    checkout instead of this one (to compare two versions in one run)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env["MONITOR_REDIS_URL"] = redis_url
    if code is not None:
        env["PYTHONPATH"] = str(code)
    with log.open("w") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "monitor", "--config", str(config), "run"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            cwd=config.parent,
        )


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the process's peak resident set size."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class RedisAccount:
    """Redis's own accounting of the work between `start()` and `figures(items)`: the server
    process's CPU (`used_cpu_user + used_cpu_sys`: `redis_ms_per_item`, the figure of issue
    31) and INFO commandstats (calls and microseconds per item of each command; commands a
    script calls are counted under their own names, and in EVALSHA's time too)."""

    SCRIPTS = ("eval", "evalsha")

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._start = self._read()

    def _read(self) -> tuple[float, dict[str, tuple[int, int]]]:
        cpu = self.client.info("cpu")
        stats = {
            name.removeprefix("cmdstat_"): (int(v["calls"]), int(v["usec"]))
            for name, v in self.client.info("commandstats").items()
        }
        return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]), stats

    def start(self) -> None:
        self._start = self._read()

    def figures(self, items: int, top: int = 12) -> dict[str, object]:
        (cpu0, stats0), (cpu1, stats1) = self._start, self._read()
        per: dict[str, tuple[float, float]] = {}
        for name, (calls, usec) in stats1.items():
            calls0, usec0 = stats0.get(name, (0, 0))
            if calls > calls0 and name not in ("info",):
                per[name] = (round((calls - calls0) / items, 1), round((usec - usec0) / items, 1))
        plain = sum(u for name, (_, u) in per.items() if name not in self.SCRIPTS)
        return {
            "redis_ms_per_item": round((cpu1 - cpu0) * 1000 / items, 3),
            "redis_commands_ms_per_item": round(plain / 1000, 3),
            "redis_scripts_ms_per_item": round(
                sum(per.get(name, (0, 0))[1] for name in self.SCRIPTS) / 1000, 3
            ),
            "redis_calls_and_us_per_item": dict(
                sorted(per.items(), key=lambda kv: -kv[1][1])[:top]
            ),
        }


def report(name: str, **figures: object) -> None:
    print(json.dumps({"benchmark": name, **figures}))
