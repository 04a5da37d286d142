"""The Lua programs the monitor runs on Redis: one `.lua` file each, beside the Python that
calls it, with a header saying its KEYS, ARGV and reply. Read once, at import; registered
with `register_script` by their callers (EVALSHA, the script body sent only if Redis lacks
it). A line `-- include: NAME.lua` is replaced by that file of the same package (code two
scripts share)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from importlib import resources
from typing import Any

import redis

from monitor.connection import UNAVAILABLE, is_cluster, primaries

_INCLUDE = re.compile(r"^-- include: (\w+)\.lua$", re.MULTILINE)


def script(name: str, package: str = "monitor") -> str:
    """The text of `<name>.lua` in `package`, its includes in place."""
    text = (resources.files(package) / f"{name}.lua").read_text(encoding="utf-8")
    return _INCLUDE.sub(lambda m: script(m[1], package), text)


class Lua:
    """A registered script that can also be queued in a pipeline of a cluster client (whose
    `evalsha` redis-py blocks): `queue` sends EVALSHA, and `pipelined` loads the scripts on
    every master when one lacks them (a replica promoted by a failover has an empty script
    cache) and runs the pipeline again."""

    def __init__(self, client: redis.Redis, text: str) -> None:
        self.client = client
        self.text = text
        self.script = client.register_script(text)

    def __call__(self, keys: list[Any], args: list[Any]) -> Any:
        return self.script(keys=keys, args=args)

    def queue(self, pipe: Any, keys: list[Any], args: list[Any]) -> None:
        pipe.execute_command("EVALSHA", self.script.sha, len(keys), *keys, *args)

    def load(self) -> None:
        for node in primaries(self.client):
            node.script_load(self.text)


def pipelined(client: redis.Redis, build: Callable[[Any], None], scripts: tuple[Lua, ...]) -> list:
    """Execute the commands `build(pipe)` queues (not a transaction: they may span slots),
    loading `scripts` and running them once more if Redis lacked one. Only for commands
    that may run twice (reads, idempotent writes)."""
    for attempt in (1, 2):
        try:
            if is_cluster(client):
                return _per_master(client, build)
            pipe = client.pipeline(transaction=False)
            build(pipe)
            return pipe.execute()
        except redis.exceptions.NoScriptError:
            if attempt == 2:
                raise
            for lua in scripts:
                lua.load()
    raise AssertionError("unreachable")


_REDIRECTED = (redis.exceptions.AskError, redis.exceptions.TryAgainError,
               redis.exceptions.ClusterDownError)  # fmt: skip


def _per_master(client: Any, build: Callable[[Any], None]) -> list:
    """The commands sent to every master at once, one batch each, then the replies read —
    as redis-py's cluster pipeline does, without its tens of µs per command in Python. When
    a slot has moved or a master is away, they go again through the cluster pipeline, which
    follows the cluster's new map of slots."""
    recorder = _recorder().pipeline(transaction=False)  # records; never connects
    build(recorder)
    stack = [(args, options) for args, options in recorder.command_stack]
    groups: dict[str, tuple[Any, list[int]]] = {}
    manager = client.nodes_manager
    for n, (args, _) in enumerate(stack):
        key = args[3] if args[0] == "EVALSHA" else args[1]
        node = manager.get_node_from_slot(client.keyslot(key))
        groups.setdefault(node.name, (node, []))[1].append(n)
    replies: list[Any] = [None] * len(stack)
    taken: list[tuple[Any, Any]] = []
    clean = False
    try:
        batches = []
        for node, indexes in groups.values():
            server = client.get_redis_connection(node)
            connection = server.connection_pool.get_connection()
            taken.append((server, connection))
            connection.send_packed_command(connection.pack_commands([stack[n][0] for n in indexes]))
            batches.append((server, connection, indexes))
        for server, connection, indexes in batches:
            for n in indexes:
                args, options = stack[n]
                try:
                    replies[n] = server.parse_response(connection, args[0], **dict(options))
                except redis.ResponseError as exc:
                    replies[n] = exc
        clean = True
    except UNAVAILABLE:
        pass
    finally:
        for server, connection in taken:
            if not clean:
                connection.disconnect()  # replies may be left unread on it
            server.connection_pool.release(connection)
    errors = [r for r in replies if isinstance(r, Exception)]
    if not clean or any(isinstance(e, _REDIRECTED) for e in errors):
        return _through_cluster(client, stack)
    if errors:
        raise errors[0]
    return replies


@functools.cache
def _recorder() -> redis.Redis:
    """A client that only lends its pipelines to record commands (building one costs ms)."""
    return redis.Redis()


def _through_cluster(client: Any, stack: list) -> list:
    pipe = client.pipeline(transaction=False)
    for args, options in stack:
        pipe.execute_command(*args, **options)
    return pipe.execute()
