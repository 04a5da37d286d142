"""Serving an ASGI app from a thread on a socket we bind (the daemon's endpoints beside the
desk, and the tests), and putting the daemon's endpoints in front of the desk."""

from __future__ import annotations

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


class Served:
    """An ASGI app served by uvicorn in a thread, on a socket bound by the caller."""

    def __init__(self, app: Starlette, sock: socket.socket) -> None:
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, name="http", daemon=True
        )
        self.thread.start()

    def shutdown(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


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
