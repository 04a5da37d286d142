"""Getting feed and page bytes.

`LocalFetcher` serves file:// URLs below given directories, for replay: no network at all.
`HttpFetcher` is the daemon's: conditional GET, redirects, timeouts, size limits and a
per-host concurrency cap.
"""

from __future__ import annotations

import asyncio
import ipaddress
import threading
import time
import zlib
from collections.abc import Coroutine, Iterable
from concurrent.futures import CancelledError
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import unquote, urlsplit

import httpx

from monitor.config import HttpSettings
from monitor.errors import FetchError

MAX_BYTES = 10 * 1024 * 1024
T = TypeVar("T")


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

    Requests run on one asyncio event loop in a thread of its own, so each has a hard total
    deadline (connect_timeout + 2 x read_timeout) that also stops a server trickling its
    headers byte by byte; callers in any thread get plain blocking calls. Bodies are
    streamed and decompressed here, at most `max_bytes` of output, so a gzip bomb or an
    endless body stops there.
    """

    def __init__(self, settings: HttpSettings, *, trusted_hosts: Iterable[str] = ()) -> None:
        self.settings = settings
        self.trusted = {h.lower() for h in (*settings.allow_hosts, *trusted_hosts)}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="http", daemon=True)
        self._thread.start()
        self._hosts: dict[str, asyncio.Semaphore] = {}  # touched only on the loop
        self._closed = False
        self.client: httpx.AsyncClient = self._run(self._open(), "client")

    async def _open(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=httpx.Timeout(
                self.settings.read_timeout, connect=self.settings.connect_timeout
            ),
            follow_redirects=True,
            max_redirects=self.settings.max_redirects,
            headers={"User-Agent": self.settings.user_agent, "Accept-Encoding": "gzip, deflate"},
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            event_hooks={"request": [self._guard]},  # every request, redirects included
        )

    async def _guard(self, request: httpx.Request) -> None:
        """Refuse requests to loopback, private, link-local or reserved addresses (a feed's
        links must not reach internal services), unless the host is trusted."""
        host = (request.url.host or "").lower()
        if self.settings.allow_private or host in self.trusted:
            return
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, request.url.port or 80)
        except OSError as exc:
            raise FetchError(str(request.url), f"cannot resolve {host}: {exc}") from exc
        for *_, address in infos:
            ip = ipaddress.ip_address(address[0])
            if not ip.is_global or ip.is_multicast:
                raise FetchError(
                    str(request.url),
                    f"refused: {host} is a non-public address ({ip}); allow it with "
                    "http.allow_hosts",
                )

    def _run(self, coroutine: Coroutine[Any, Any, T], url: str) -> T:
        if self._closed:
            coroutine.close()
            raise FetchError(url, "the fetcher is closed")
        try:
            return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()
        except CancelledError as exc:  # closed while this request was running
            raise FetchError(url, "the fetcher was closed") from exc

    def close(self) -> None:
        """Cancel what is in flight, close the connections and stop the loop."""
        if self._closed:
            return
        self._closed = True
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _shutdown(self) -> None:
        current = asyncio.current_task()
        for task in asyncio.all_tasks():
            if task is not current:
                task.cancel()
        await self.client.aclose()

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
        return self._run(self._get(url, headers), url)

    async def _get(self, url: str, headers: dict[str, str]) -> Response:
        try:
            host = (urlsplit(url).hostname or "").lower()
        except ValueError as exc:
            raise FetchError(url, f"bad URL ({exc})") from exc
        slot = self._hosts.setdefault(host, asyncio.Semaphore(self.settings.per_host))
        limit = self.settings.connect_timeout + 2 * self.settings.read_timeout
        async with slot:
            started = time.monotonic()  # the wait for a slot is not the server's time
            try:
                async with asyncio.timeout(limit):
                    async with self.client.stream("GET", url, headers=headers) as response:
                        body = b"" if response.status_code == 304 else await self._read(response)
            except FetchError:
                raise
            except TimeoutError as exc:
                raise FetchError(url, f"no complete answer within {limit:.0f} s") from exc
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

    async def _read(self, response: httpx.Response) -> bytes:
        """The body, decompressed here rather than by httpx so that no chunk can inflate
        past `max_bytes` (a 64 KB chunk of a gzip bomb is 64 MB of output)."""
        url = str(response.url)
        limit = self.settings.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FetchError(url, f"body of {declared} bytes exceeds max_bytes")
        decoder = _decoder(response.headers.get("content-encoding", ""), url)
        chunks: list[bytes] = []
        size = 0
        async for raw in response.aiter_raw():
            try:
                chunk = decoder.decompress(raw, limit + 1 - size) if decoder else raw
            except zlib.error as exc:
                raise FetchError(url, f"broken compressed body ({exc})") from exc
            size += len(chunk)
            if size > limit or (decoder and decoder.unconsumed_tail):
                raise FetchError(url, f"body exceeds {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def fetch(self, url: str) -> Page:
        """A page, for extraction: any status but 200 is an error."""
        response = self.get(url, accept="text/html,application/xhtml+xml;q=0.9,*/*;q=0.5")
        if response.status != 200:
            raise FetchError(url, f"HTTP {response.status}")
        return Page(url=response.url, body=response.body, headers=response.headers)


def _decoder(coding: str, url: str) -> zlib._Decompress | None:
    """A decompressor for the response's Content-Encoding (None: identity)."""
    coding = coding.strip().lower()
    if coding in ("", "identity"):
        return None
    if "," in coding:  # stacked codings would each need their own limit
        raise FetchError(url, "more than one content coding")
    if coding in ("gzip", "x-gzip", "deflate"):
        return zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected
    raise FetchError(url, f"unsupported content coding {coding!r}")
