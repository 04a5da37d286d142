"""Getting feed and page bytes.

`LocalFetcher` serves file:// URLs below given directories, for replay: no network at all.
`HttpFetcher` is the daemon's: conditional GET, redirects, timeouts, size limits and a
per-host concurrency cap.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import httpx

from monitor.config import HttpSettings
from monitor.errors import FetchError

MAX_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Page:
    url: str  # the final URL, after redirects
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class Fetcher(Protocol):
    def fetch(self, url: str) -> Page: ...


class LocalFetcher:
    """Reads file:// URLs that lie below one of `roots`; refuses everything else."""

    def __init__(self, *roots: Path, max_bytes: int = MAX_BYTES) -> None:
        self.roots = tuple(root.resolve() for root in roots)
        self.max_bytes = max_bytes

    def fetch(self, url: str) -> Page:
        parts = urlsplit(url)
        if parts.scheme != "file":
            raise FetchError(url, "replay reads local files only (no network)")
        path = Path(unquote(parts.path)).resolve()
        if not any(path.is_relative_to(root) for root in self.roots):
            raise FetchError(url, "outside the replayed feeds' directories")
        try:
            with path.open("rb") as handle:
                body = handle.read(self.max_bytes + 1)
        except OSError as exc:
            raise FetchError(url, exc.strerror or str(exc)) from exc
        if len(body) > self.max_bytes:
            raise FetchError(url, f"larger than {self.max_bytes} bytes")
        return Page(url=path.as_uri(), body=body)


@dataclass(frozen=True, slots=True)
class Response:
    """What a conditional GET gave: status 304 has no body."""

    status: int
    url: str  # final URL after redirects
    body: bytes
    headers: dict[str, str]
    permanent_url: str | None = None  # set when every redirect on the way was permanent
    elapsed: float = 0.0


class HttpFetcher:
    """HTTP GET with conditional headers, limits and a per-host concurrency cap.

    Bodies are streamed and counted after decompression, so a gzip bomb or an endless
    body stops at `max_bytes`. Thread-safe: one instance serves every poll thread.
    """

    def __init__(self, settings: HttpSettings) -> None:
        self.settings = settings
        self.client = httpx.Client(
            timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            follow_redirects=True,
            max_redirects=settings.max_redirects,
            headers={"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate"},
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )
        self._hosts: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self.client.close()

    def _host_slot(self, url: str) -> threading.BoundedSemaphore:
        try:
            host = (urlsplit(url).hostname or "").lower()
        except ValueError as exc:
            raise FetchError(url, f"bad URL ({exc})") from exc
        with self._lock:
            slot = self._hosts.get(host)
            if slot is None:
                slot = self._hosts[host] = threading.BoundedSemaphore(self.settings.per_host)
            return slot

    def get(
        self, url: str, *, etag: str = "", last_modified: str = "", accept: str = ""
    ) -> Response:
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        if accept:
            headers["Accept"] = accept
        with self._host_slot(url):
            started = time.monotonic()  # the wait for a slot is not the server's time
            deadline = started + 2 * self.settings.read_timeout
            try:
                with self.client.stream("GET", url, headers=headers) as response:
                    body = b"" if response.status_code == 304 else self._read(response, deadline)
            except httpx.TooManyRedirects as exc:
                raise FetchError(url, f"more than {self.settings.max_redirects} redirects") from exc
            except httpx.TimeoutException as exc:
                raise FetchError(url, f"timed out ({type(exc).__name__})") from exc
            except httpx.HTTPError as exc:
                raise FetchError(url, f"{type(exc).__name__}: {exc}") from exc
            except (ValueError, UnicodeError) as exc:  # URLs httpx cannot even build
                raise FetchError(url, f"bad URL ({exc})") from exc
        history = response.history
        permanent = (
            str(response.url)
            if history and all(r.status_code in (301, 308) for r in history)
            else None
        )
        return Response(
            status=response.status_code,
            url=str(response.url),
            body=body,
            headers={k.lower(): v for k, v in response.headers.items()},
            permanent_url=permanent,
            elapsed=time.monotonic() - started,
        )

    def _read(self, response: httpx.Response, deadline: float) -> bytes:
        if "," in response.headers.get("content-encoding", ""):
            # Stacked codings are decoded layer by layer before any size check: refuse them.
            raise FetchError(str(response.url), "more than one content coding")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.settings.max_bytes:
            raise FetchError(str(response.url), f"body of {declared} bytes exceeds max_bytes")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.settings.max_bytes:
                raise FetchError(str(response.url), f"body exceeds {self.settings.max_bytes} bytes")
            if time.monotonic() > deadline:
                raise FetchError(str(response.url), "response took too long (trickling)")
            chunks.append(chunk)
        return b"".join(chunks)

    def fetch(self, url: str) -> Page:
        """A page, for extraction: any status but 200 is an error."""
        response = self.get(url, accept="text/html,application/xhtml+xml;q=0.9,*/*;q=0.5")
        if response.status != 200:
            raise FetchError(url, f"HTTP {response.status}")
        return Page(url=response.url, body=response.body, headers=response.headers)
