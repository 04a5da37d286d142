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

import functools
from collections.abc import Callable
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
    return [
        node.redis_connection or client.get_redis_connection(node)
        for node in client.get_primaries()
    ]


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
    server: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": TIMEOUT,
        "db": int(db or options.pop("db", "0") or 0),
    }
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


Commands = list[tuple[tuple, dict]]  # (args, options) of each command, in order


def recorded(build: Callable[[Any], object]) -> Commands:
    """The commands `build(pipe)` queues on a pipeline that only records them."""
    pipe = _recorder().pipeline(transaction=False)
    build(pipe)
    return [(args, options) for args, options in pipe.command_stack]


@functools.cache
def _recorder() -> redis.Redis:
    """A client that only lends its pipelines to record commands (building one costs ms)."""
    return redis.Redis()


def run(client: Any, commands: Commands, *, raise_on_error: bool = True) -> list:
    """Execute the commands, not as a transaction (on a cluster they may span slots): one
    pipeline on one server; on a cluster, each master's batch sent at once and then the
    replies read — as redis-py's cluster pipeline does, without its tens of µs per command
    in Python (and its COMMAND GETKEYS round trip per EVALSHA). When a slot has moved or a
    master is away, they go again through the cluster pipeline, which follows the cluster's
    new map of slots: only for commands that may run twice. With `raise_on_error` false,
    errors come back in place of replies."""
    if not is_cluster(client):
        pipe = client.pipeline(transaction=False)
        for args, options in commands:
            pipe.execute_command(*args, **options)
        return list(pipe.execute(raise_on_error=raise_on_error))
    replies = _per_master(client, commands)
    errors = [r for r in replies if isinstance(r, Exception)] if replies is not None else []
    if replies is None or any(isinstance(e, _REDIRECTED) for e in errors):
        pipe = client.pipeline(transaction=False)
        for args, options in commands:
            pipe.execute_command(*args, **options)
        return list(pipe.execute(raise_on_error=raise_on_error))
    if errors and raise_on_error:
        raise errors[0]
    return replies


_REDIRECTED = (
    redis.exceptions.AskError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
)


def _per_master(client: Any, commands: Commands) -> list | None:
    """The replies (errors in place), or None when a master could not be reached."""
    groups: dict[str, tuple[Any, list[int]]] = {}
    manager = client.nodes_manager
    replies: list[Any] = [None] * len(commands)
    taken: list[tuple[Any, Any]] = []
    clean = False
    try:
        for n, (args, _) in enumerate(commands):
            if args[0] == "EVALSHA" and int(args[2]) == 0:
                node = client.get_default_node()  # a script without keys: any master
            else:
                key = args[3] if args[0] == "EVALSHA" else args[1]
                node = manager.get_node_from_slot(client.keyslot(key))
            groups.setdefault(node.name, (node, []))[1].append(n)
        batches = []
        for node, indexes in groups.values():
            server = client.get_redis_connection(node)
            connection = server.connection_pool.get_connection()
            taken.append((server, connection))
            connection.send_packed_command(
                connection.pack_commands([commands[n][0] for n in indexes])
            )
            batches.append((server, connection, indexes))
        for server, connection, indexes in batches:
            for n in indexes:
                args, options = commands[n]
                try:
                    replies[n] = server.parse_response(connection, args[0], **dict(options))
                except redis.ResponseError as exc:
                    replies[n] = exc
        clean = True
    except (*UNAVAILABLE, redis.exceptions.SlotNotCoveredError):
        return None  # a master away, or a slot without one (a failover): the slow path
    finally:
        for server, connection in taken:
            if not clean:
                connection.disconnect()  # replies may be left unread on it
            server.connection_pool.release(connection)
    return replies
