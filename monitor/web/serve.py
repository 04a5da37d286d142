"""Serving an ASGI app from a thread on a socket we bind (the daemon's endpoints beside the
desk, and the tests), and putting the daemon's endpoints in front of the desk."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route


def with_desk(
    desk: Starlette, endpoints: dict[str, Callable[[], tuple[int, str, bytes]]]
) -> Starlette:
    """An app serving `endpoints` (path -> (status, content type, body): a daemon's
    /healthz, /livez and /metrics) and the desk under every other path."""

    def answer(request: Request) -> Response:
        status, media, body = endpoints[request.url.path]()
        return Response(body, status_code=status, media_type=media)

    routes: list[Route | Mount] = [Route(path, answer) for path in endpoints]
    return Starlette(routes=[*routes, Mount("/", desk)])


class _Cancelled(logging.Filter):
    """Drops uvicorn's traceback of a request cancelled by the shutdown (a live view)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError))


_CANCELLED = _Cancelled()


class Served:
    """An ASGI app served by uvicorn in a thread, on a socket bound by the caller.

    Off the main thread uvicorn leaves signals alone: the caller handles them and decides
    when to stop. Open live views (server-sent events) are cut after 5 s of shutdown."""

    def __init__(self, app: Starlette, sock: socket.socket) -> None:
        config = uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=5
        )
        self.server = uvicorn.Server(config)
        logging.getLogger("uvicorn.error").addFilter(_CANCELLED)  # once: a set of filters
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, name="http", daemon=True
        )
        self.thread.start()

    def shutdown(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def wait(self, stop: threading.Event) -> None:
        """Serve until `stop` is set (or the server ends), then shut down."""
        while self.thread.is_alive() and not stop.wait(0.5):
            pass
        self.shutdown()


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket. TCP_NODELAY is inherited by connections: a keep-alive
    reply's body is not held back waiting for the ACK of its headers (40 ms a page)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)  # listening before anyone is told the address: no refused connection
    except OSError:
        sock.close()
        raise
    return sock
