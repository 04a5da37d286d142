"""Getting feed and page bytes.

`LocalFetcher` serves file:// URLs below given directories, for replay: no network at all.
`HttpFetcher` is the daemon's: conditional GET, redirects, timeouts, size limits and a
per-host concurrency cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import ssl
import threading
import time
import urllib.request
import weakref
import zlib
from collections.abc import Coroutine, Iterable, Mapping
from concurrent.futures import CancelledError
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import unquote, urlsplit

import aiohttp
import certifi
import yarl
from aiohttp.http_exceptions import HttpProcessingError

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

    Requests run on one asyncio event loop in a thread of its own (aiohttp), so each has a
    hard total deadline (connect_timeout + 2 x read_timeout) that also stops a server
    trickling its headers byte by byte. Coroutines on that loop (the poll scheduler) await
    `aget`; callers in other threads get plain blocking calls (`get`, `fetch`). Redirects are
    followed here, each hop through the address guard. Bodies are streamed and decompressed
    here, at most `max_bytes` of output, so a gzip bomb or an endless body stops there.
    """

    def __init__(self, settings: HttpSettings, *, trusted_hosts: Iterable[str] = ()) -> None:
        self.settings = settings
        self.trusted = {h.lower() for h in (*settings.allow_hosts, *trusted_hosts)}
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=_serve, args=(self.loop,), name="http", daemon=True)
        self._thread.start()
        self._hosts: dict[str, asyncio.Semaphore] = {}  # touched only on the loop
        self._closed = False
        # HTTP(S)_PROXY / NO_PROXY, as httpx honoured them (it read them per client too).
        self._proxies = {
            scheme: url
            for scheme, url in urllib.request.getproxies_environment().items()
            if scheme in ("http", "https")
        }
        self.session: aiohttp.ClientSession = self.run(self._open(), "session")
        # A fetcher dropped without close() (a Daemon built but never run) still closes its
        # connections and ends its thread.
        self._finalizer = weakref.finalize(self, _abandoned, self.loop, self.session)

    async def _open(self) -> aiohttp.ClientSession:
        # The CA bundle httpx used (certifi): the same sites verify as before.
        tls = ssl.create_default_context(cafile=certifi.where())
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=200, limit_per_host=0, keepalive_timeout=5.0, ssl=tls
            ),
            timeout=aiohttp.ClientTimeout(
                total=None,
                sock_connect=self.settings.connect_timeout,
                sock_read=self.settings.read_timeout,
            ),
            headers={"User-Agent": self.settings.user_agent, "Accept-Encoding": "gzip, deflate"},
            auto_decompress=False,  # decompressed in `_read`, within max_bytes
            cookie_jar=aiohttp.CookieJar(unsafe=True),  # kept across requests, as httpx did
            # Not trust_env: aiohttp would read ~/.netrc and the environment in a thread for
            # every request. The proxies of the environment are read once, in __init__.
            trust_env=False,
        )

    async def _guard(self, url: yarl.URL) -> None:
        """Refuse requests to loopback, private, link-local or reserved addresses (a feed's
        links must not reach internal services), unless the host is trusted."""
        host = (url.host or "").lower()
        if self.settings.allow_private or host in self.trusted:
            return
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, url.port or 80)
        except OSError as exc:
            raise FetchError(str(url), f"cannot resolve {host}: {exc}") from exc
        for *_, address in infos:
            ip = ipaddress.ip_address(address[0])
            if not ip.is_global or ip.is_multicast:
                raise FetchError(
                    str(url),
                    f"refused: {host} is a non-public address ({ip}); allow it with "
                    "http.allow_hosts",
                )

    def on_loop(self) -> bool:
        """Whether the caller runs on the fetcher's loop."""
        return threading.current_thread() is self._thread

    def _proxy(self, url: yarl.URL) -> str | None:
        proxy = self._proxies.get(url.scheme)
        if proxy is None or urllib.request.proxy_bypass(url.host or ""):
            return None
        return proxy

    def run(self, coroutine: Coroutine[Any, Any, T], url: str = "") -> T:
        """Run `coroutine` on the loop and wait for it (from any thread but the loop's)."""
        if self._closed:
            coroutine.close()
            raise FetchError(url, "the fetcher is closed")
        if self.on_loop():
            coroutine.close()
            raise RuntimeError("HttpFetcher.run called on its own loop: await instead")
        try:
            return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()
        except CancelledError as exc:  # closed while this request was running
            raise FetchError(url, "the fetcher was closed") from exc

    def close(self) -> None:
        """Cancel what is in flight, close the connections and stop the loop."""
        if self._closed:
            return
        self._closed = True
        self._finalizer.detach()
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)  # the thread closes the loop as it ends

    async def _shutdown(self) -> None:
        current = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.session.close()

    def get(
        self, url: str, *, etag: str = "", last_modified: str = "", accept: str = ""
    ) -> Response:
        return self.run(self.aget(url, etag=etag, last_modified=last_modified, accept=accept), url)

    async def aget(
        self, url: str, *, etag: str = "", last_modified: str = "", accept: str = ""
    ) -> Response:
        """`get` for coroutines on the loop."""
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        if accept:
            headers["Accept"] = accept
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
                    response = await self._follow(url, headers)
            except TimeoutError as exc:  # aiohttp's own timeouts are FetchErrors by now
                raise FetchError(url, f"no complete answer within {limit:.0f} s") from exc
        return dataclasses.replace(response, elapsed=time.monotonic() - started)

    async def _follow(self, url: str, headers: dict[str, str]) -> Response:
        """GET, following redirects (each hop guarded); every failure a FetchError."""
        permanent = True
        hops = 0
        try:
            current = yarl.URL(url)
            while True:
                await self._guard(current)
                async with self.session.get(
                    current, headers=headers, allow_redirects=False, proxy=self._proxy(current)
                ) as response:
                    location = response.headers.get("Location")
                    if response.status in _REDIRECTS and location is not None:
                        if hops >= self.settings.max_redirects:
                            raise FetchError(
                                url, f"more than {self.settings.max_redirects} redirects"
                            )
                        hops += 1
                        permanent = permanent and response.status in (301, 308)
                        current = response.url.join(yarl.URL(location))
                        continue
                    body = b"" if response.status == 304 else await self._read(response)
                    return Response(
                        status=response.status,
                        url=str(response.url),
                        body=body,
                        headers=_headers(response.headers),
                        permanent_url=str(response.url) if hops and permanent else None,
                    )
        except aiohttp.ServerTimeoutError as exc:  # a connect or read timeout
            raise FetchError(url, f"timed out ({type(exc).__name__})") from exc
        except aiohttp.ClientConnectorError as exc:  # refused, unreachable, no such host: in words
            error = exc.os_error
            reason = "connection refused" if isinstance(error, ConnectionRefusedError) else None
            reason = reason or error.strerror or str(error) or type(error).__name__
            raise FetchError(url, f"cannot connect to {exc.host}:{exc.port}: {reason}") from exc
        except (aiohttp.ClientError, HttpProcessingError) as exc:
            raise FetchError(url, f"{type(exc).__name__}: {exc}") from exc
        except (ValueError, UnicodeError) as exc:  # URLs that cannot even be built
            raise FetchError(url, f"bad URL ({exc})") from exc

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        """The body, decompressed here rather than by aiohttp so that no chunk can inflate
        past `max_bytes` (a 64 KB chunk of a gzip bomb is 64 MB of output)."""
        url = str(response.url)
        limit = self.settings.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FetchError(url, f"body of {declared} bytes exceeds max_bytes")
        decoder = _decoder(response.headers.get("content-encoding", ""), url)
        chunks: list[bytes] = []
        size = 0
        async for raw in response.content.iter_any():
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


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    try:
        loop.run_forever()
    finally:
        loop.close()


def _abandoned(loop: asyncio.AbstractEventLoop, session: aiohttp.ClientSession) -> None:
    async def close() -> None:
        await session.close()
        loop.stop()

    with contextlib.suppress(RuntimeError):  # the loop is closed already
        loop.call_soon_threadsafe(lambda: loop.create_task(close()))


_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def _headers(raw: Mapping[str, str]) -> dict[str, str]:
    """Lower-case names; a header given more than once, its values joined with ", "."""
    merged: dict[str, str] = {}
    for name, value in raw.items():
        key = name.lower()
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    return merged


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
