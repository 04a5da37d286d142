"""Getting feed and page bytes.

`LocalFetcher` serves file:// URLs below one directory, for replay: no network at all.
The HTTP fetcher of the daemon (conditional GET, limits, address guard) joins it here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

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
