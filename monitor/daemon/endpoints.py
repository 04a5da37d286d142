"""The daemon's HTTP endpoints on daemon.listen: /healthz (and /health), /livez and
/metrics — from a small threaded server, or beside the desk when web.in_daemon is set."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Protocol

import structlog
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from monitor.daemon.metrics import Metrics
from monitor.errors import ListenError

if TYPE_CHECKING:
    from starlette.applications import Starlette

log = structlog.get_logger("monitor.daemon")

Answer = Callable[[], tuple[int, str, bytes]]  # -> (status, content type, body)


class Server(Protocol):
    def shutdown(self) -> None: ...


def answers(
    metrics: Metrics,
    health: Callable[[], tuple[bool, dict]],
    liveness: Callable[[], tuple[bool, dict]],
) -> dict[str, Answer]:
    """Path -> answer. /livez: only what a restart can fix (the loop stuck), for liveness
    probes; while Redis refuses writes a restart helps nothing."""

    def checked(check: Callable[[], tuple[bool, dict]]) -> Answer:
        def answer() -> tuple[int, str, bytes]:
            ok, info = check()
            return 200 if ok else 503, "application/json", json.dumps(info).encode()

        return answer

    return {
        "/metrics": lambda: (200, CONTENT_TYPE_LATEST, generate_latest(metrics.registry)),
        "/healthz": checked(health),
        "/health": checked(health),
        "/livez": checked(liveness),
    }


def serve(
    listen: str, endpoints: dict[str, Answer], desk: Callable[[], Starlette] | None = None
) -> tuple[Server, str]:
    """Serve `endpoints` (and the desk app `desk` makes, if given) on `listen`; the
    server and the address it got (port 0 takes a free one)."""
    host, _, port = listen.rpartition(":")
    if desk is not None:
        from monitor.web import Served, bind, with_desk

        try:
            sock = bind(host, int(port))
        except OSError as exc:
            raise ListenError(listen, exc) from exc
        served = Served(with_desk(desk(), endpoints), sock)
        return served, f"{host}:{sock.getsockname()[1]}"

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            answer = endpoints.get(self.path)
            code, ctype, body = answer() if answer else (404, "text/plain", b"not found\n")
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # scrapes are not events

    try:
        server = ThreadingHTTPServer((host, int(port)), Handler)
    except OSError as exc:
        raise ListenError(listen, exc) from exc
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server, f"{host}:{server.server_address[1]}"
