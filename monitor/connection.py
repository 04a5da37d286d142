"""Connecting to Redis: one server, a failover pair watched by Sentinel, or a Cluster.

- `redis://`, `rediss://` (TLS) and `unix://` URLs name one server — or any node of a
  Redis Cluster: a node answers `INFO cluster` with `cluster_enabled:1`, and then the client
  is redis-py's cluster client, which learns the other nodes and follows the slots as they
  move (a failover promotes a replica; the client finds it by itself).
- `redis+sentinel://[user:password@]host:port[,host:port...]/SERVICE[/DB]` (or
  `rediss+sentinel://`, TLS to the servers) asks the Sentinels where SERVICE's master is,
  and asks again after a failover. The user and password are the servers'; give the
  Sentinels' own with `?sentinel_password=…` (and `sentinel_username=`).

Every client decodes replies to str and has a socket timeout, so a dead server is an answer.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import parse_qsl, unquote, urlsplit

import redis
import redis.sentinel

from monitor.errors import RedisUnavailable

TIMEOUT = 10.0  # seconds: socket timeout of every client

# Redis is away for now, not refusing what was asked: a server down or restarting, a cluster
# electing a new master for some slots or moving them. Callers wait and retry.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.ClusterError,  # CLUSTERDOWN, MASTERDOWN, redirections exhausted
    redis.exceptions.TryAgainError,
    redis.exceptions.SlotNotCoveredError,
)


def connect(url: str) -> redis.Redis:
    """A client for `url`, checked with a PING so a bad URL fails here, clearly. A Cluster
    node's URL gives a cluster client (`is_cluster`)."""
    try:
        if urlsplit(url).scheme in ("redis+sentinel", "rediss+sentinel"):
            client = _sentinel(url)
        else:
            client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=TIMEOUT)
            client.ping()
            if _cluster_enabled(client):
                client.close()
                client = _cluster(url)
        client.ping()
    except ValueError as exc:
        raise RedisUnavailable(f"bad Redis URL {redact(url)!r}: {exc}") from exc
    except (redis.RedisError, redis.exceptions.RedisClusterException, OSError) as exc:
        raise RedisUnavailable(f"cannot reach Redis at {redact(url)}: {describe(exc)}") from exc
    return client


def is_cluster(client: Any) -> bool:
    """Whether `client` talks to a Redis Cluster (keys live on several masters)."""
    return isinstance(client, redis.RedisCluster)


def primaries(client: Any) -> list[Any]:
    """One client per master of a Cluster (each node's own connection), or `[client]`: for
    what is per server, not per key (INFO, CONFIG, SCRIPT LOAD)."""
    if not is_cluster(client):
        return [client]
    return [node.redis_connection or client.get_redis_connection(node)
            for node in client.get_primaries()]  # fmt: skip


def _cluster_enabled(client: redis.Redis) -> bool:
    try:
        return bool(int(client.info("cluster").get("cluster_enabled", 0)))
    except redis.exceptions.NoPermissionError:
        # INFO is @dangerous: a user without it may still be a cluster's, which needs
        # CLUSTER SLOTS anyway. A standalone server says its cluster support is disabled.
        try:
            client.execute_command("CLUSTER", "MYID")
        except redis.exceptions.NoPermissionError:
            return False
        except redis.ResponseError as exc:
            if "cluster support disabled" in str(exc):
                return False
            raise
        return True


def _cluster(url: str) -> redis.Redis:
    cluster = redis.RedisCluster.from_url(
        url, decode_responses=True, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT
    )
    # redis-py's cluster client does what a client does, for our purposes: typed as one.
    return cast(redis.Redis, cluster)


def _sentinel(url: str) -> redis.Redis:
    parts = urlsplit(url)
    options = dict(parse_qsl(parts.query))
    service, _, db = parts.path.strip("/").partition("/")
    if not service:
        raise ValueError("a Sentinel URL names the service: redis+sentinel://host:port/SERVICE")
    hosts = []
    for place in parts.netloc.rsplit("@", 1)[-1].split(","):
        host, _, port = place.rpartition(":") if ":" in place else (place, "", "26379")
        hosts.append((host.strip("[]") or "127.0.0.1", int(port or 26379)))
    sentinel_kwargs: dict[str, Any] = {"socket_timeout": TIMEOUT}
    for key in ("sentinel_username", "sentinel_password"):
        if key in options:
            sentinel_kwargs[key.removeprefix("sentinel_")] = options.pop(key)
    server: dict[str, Any] = {"decode_responses": True, "socket_timeout": TIMEOUT,
                              "db": int(db or options.pop("db", "0") or 0)}  # fmt: skip
    if parts.username:
        server["username"] = unquote(parts.username)
    if parts.password:
        server["password"] = unquote(parts.password)
    if parts.scheme.startswith("rediss"):
        server["ssl"] = True
        server.update({k: v for k, v in options.items() if k.startswith("ssl_")})
    sentinel = redis.sentinel.Sentinel(hosts, sentinel_kwargs=sentinel_kwargs, **server)
    try:
        sentinel.discover_master(service)
    except redis.sentinel.MasterNotFoundError as exc:
        raise RedisUnavailable(
            f"no Sentinel at {redact(url)} knows a master for {service!r}: {exc}"
        ) from exc
    return sentinel.master_for(service)


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"


def describe(exc: BaseException) -> str:
    """A Redis error in words a user can act on. Cluster redirections and slot errors
    are named; anything else is Redis's own message."""
    text = str(exc)
    inner = text.split(" caused error: ", 1)[-1]  # a pipeline's "Command # n (...) of ..."
    if isinstance(exc, redis.exceptions.AskError):  # MOVED and ASK
        return (
            f"this Redis is a Cluster node and the key lives on another node ({inner}); "
            "the monitor was not told it is a cluster — does the user lack INFO and "
            "CLUSTER? (allow +info +cluster, or at least +cluster|slots)"
        )
    if isinstance(exc, redis.exceptions.ClusterCrossSlotError):
        return f"Redis Cluster refused a command whose keys are in different slots ({inner})"
    if isinstance(exc, redis.exceptions.ClusterDownError):
        return f"the Redis Cluster is down or has slots no master serves ({inner})"
    if isinstance(exc, redis.exceptions.TryAgainError):
        return f"the Redis Cluster is moving the slot of these keys; try again ({inner})"
    return text
