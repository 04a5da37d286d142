"""The project's exceptions. Each builds its own message; the CLI prints it on one line."""

from __future__ import annotations

import errno


class MonitorError(Exception):
    """Base of every error the monitor raises on purpose."""


class ConfigError(MonitorError):
    """A setting is missing or has a bad value."""


class FeedError(MonitorError):
    """A feed could not be read or is not a feed."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


class FetchError(MonitorError):
    """A page or feed could not be fetched."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"{url}: {reason}")


class ExtractError(MonitorError):
    """No article text could be extracted from a page."""


class RuleError(MonitorError):
    """A rule or alias file is invalid. Carries the file, line and column (1-based)."""

    def __init__(self, path: str, message: str, line: int | None = None, column: int | None = None):
        self.path = path
        self.line = line
        self.column = column
        self.message = message
        where = path
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        super().__init__(f"{where}: {message}")


class QuerySyntaxError(MonitorError):
    """A query does not parse. `offset` is the 0-based character position in the query."""

    def __init__(self, message: str, offset: int) -> None:
        self.message = message
        self.offset = offset
        super().__init__(f"{message} (at character {offset + 1})")


class ListenError(MonitorError):
    """The daemon's HTTP address (daemon.listen) cannot be bound."""

    def __init__(self, address: str, exc: OSError) -> None:
        reason = exc.strerror or str(exc)
        hint = " (another daemon on this host?)" if exc.errno == errno.EADDRINUSE else ""
        super().__init__(
            f"daemon.listen {address}: {reason}{hint}; set daemon.listen (or "
            "MONITOR_DAEMON_LISTEN) to another HOST:PORT, HOST:0 for any free port, "
            'or "" for none'
        )


class RedisUnavailable(MonitorError):
    """Redis could not be reached or the embedded server could not start."""


class RedisEvicts(MonitorError):
    """Redis may evict keys under memory pressure: the monitor refuses to run on it."""

    def __init__(self, where: str, policy: str, maxmemory: int) -> None:
        self.policy = policy
        limit = f"maxmemory {maxmemory} bytes" if maxmemory else "no maxmemory yet"
        super().__init__(
            f"Redis at {where} may evict keys (maxmemory-policy {policy}, {limit}): feed "
            "state, alert markers and stream entries would vanish silently, doubling and "
            "losing alerts. Set `maxmemory-policy noeviction` (CONFIG SET and redis.conf), "
            "or accept that risk with redis_allow_eviction = true"
        )
