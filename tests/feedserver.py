"""A real HTTP server on 127.0.0.1 for tests: routes are set per test, requests are logged."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    gzip: bool = False
    # Written one after another instead of `body`, with no Content-Length unless `headers`
    # declares one; the connection closes after the last (or when the client gives up).
    chunks: Iterable[bytes] | None = None


Route = Callable[[dict[str, str]], Reply]  # request headers (lower-case) -> reply


class FeedServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.bodies: list[bytes] = []  # of POST requests, in order
        self.release = threading.Event()  # set to end every delay early
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                server.bodies.append(self.rfile.read(length))
                self.do_GET()

            def do_GET(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                server.requests.append((self.path, headers))
                route = server.routes.get(self.path)
                reply = route(headers) if route else Reply(404, b"not found")
                if reply.delay:
                    server.release.wait(reply.delay)
                body = gzip.compress(reply.body) if reply.gzip else reply.body
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    if reply.gzip:
                        self.send_header("Content-Encoding", "gzip")
                    if reply.chunks is None:
                        self.send_header("Content-Length", str(len(body)))
                        self.end_headers()
                        self.wfile.write(body)
                        return
                    self.send_header("Connection", "close")
                    self.close_connection = True
                    self.end_headers()
                    for chunk in reply.chunks:
                        if server.release.is_set():
                            break
                        self.wfile.write(chunk)
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up: that is what some tests want

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )  # (a quick shutdown: tests start and stop many servers)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def hits(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p == path)

    def static(self, path: str, body: bytes, **headers: str) -> None:
        """Serve `body` with an ETag, answering 304 to a matching If-None-Match."""
        etag = f'"{hash(body) & 0xFFFFFFFF:x}"'

        def route(request: dict[str, str]) -> Reply:
            if request.get("if-none-match") == etag:
                return Reply(304, headers={"ETag": etag})
            return Reply(
                200, body, {"ETag": etag, "Content-Type": "application/rss+xml", **headers}
            )

        self.routes[path] = route

    def start(self) -> FeedServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def rss(items: list[dict[str, str]], title: str = "Test feed") -> bytes:
    """A small RSS 2.0 document; each item: title, link, guid, description, pubDate."""
    parts = [
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>',
        f"<title>{title}</title><link>http://example.org/</link><description>d</description>",
    ]
    for item in items:
        fields = "".join(f"<{k}>{v}</{k}>" for k, v in item.items())
        parts.append(f"<item>{fields}</item>")
    parts.append("</channel></rss>")
    return "".join(parts).encode()
