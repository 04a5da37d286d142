"""The Lua programs the monitor runs on Redis: one `.lua` file each, beside the Python that
calls it, with a header naming its KEYS and ARGV one per line (`-- KEYS[1] name: ...`,
`-- ARGV[2] name: ...`; `[3..]` for the rest, `[4]?` for one that may be absent) and its
reply. A line `-- include: NAME.lua` is replaced by that file of the same package (code two
scripts share).

Each script is called through one typed contract (`Call`): a frozen dataclass whose fields
are its KEYS and ARGV in the header's order and names (tests/test_scripts.py holds them
equal), and whose `parse` turns the reply into a named dataclass. `Lua` runs it: EVALSHA,
the body sent only if Redis lacks it; plain, or queued in a pipeline (also a cluster's).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Mapping
from importlib import resources
from types import MappingProxyType
from typing import Any, ClassVar, Generic, TypeVar

import redis
from redis.client import NEVER_DECODE

from monitor.store.connection import primaries, recorded, run

_INCLUDE = re.compile(r"^-- include: (\w+)\.lua$", re.MULTILINE)
R = TypeVar("R")


@functools.cache
def script(name: str, package: str = "monitor") -> str:
    """The text of `<name>.lua` in `package`, its includes in place."""
    text = (resources.files(package) / f"{name}.lua").read_text(encoding="utf-8")
    return _INCLUDE.sub(lambda m: script(m[1], package), text)


# The metadata of a `Call`'s fields (`field(metadata=KEY)`) that are not one ARGV each.
KEY: Mapping[str, bool] = MappingProxyType({"key": True})  # one of the KEYS
SPREAD: Mapping[str, bool] = MappingProxyType({"spread": True})  # the last ARGV: a list


class Call(Generic[R]):
    """A script's arguments, built by name (subclasses are frozen dataclasses): fields with
    the metadata KEY are its KEYS, the others its ARGV, each in declaration order; a field
    with SPREAD is a list passed value by value. A field that is None is left out:
    an optional key or argument (the trailing ones). `parse` reads the script's reply."""

    script: ClassVar[str]  # the `.lua` file's name, without the suffix
    package: ClassVar[str]  # the package it lies in

    def keys(self) -> list[Any]:
        return self._values(keys=True)

    def argv(self) -> list[Any]:
        return self._values(keys=False)

    def _values(self, *, keys: bool) -> list[Any]:
        out: list[Any] = []
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if f.metadata.get("key", False) is not keys:
                continue
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.metadata.get("spread"):
                out.extend(value)
            else:
                out.append(value)
        return out

    def parse(self, reply: Any) -> R:
        raise NotImplementedError


class Lua:
    """A script registered on `client` (one server or a cluster), run by its SHA: called
    with a `Call`, or queued in a pipeline (`queue`: EVALSHA as a plain command, which a
    cluster pipeline allows where redis-py blocks its `evalsha`). `load` puts it on every
    master (a replica promoted by a failover has an empty script cache): `pipelined` does
    so when a pipeline met NOSCRIPT."""

    def __init__(self, client: redis.Redis, call: type[Call[Any]]) -> None:
        self.client = client
        self.text = script(call.script, call.package)
        self.script = client.register_script(self.text)

    def __call__(self, call: Call[R]) -> R:
        return call.parse(self.script(keys=call.keys(), args=call.argv()))

    def raw(self, call: Call[R]) -> R:
        """Run the call, the strings of its reply left as bytes (whatever the client
        decodes)."""
        keys = call.keys()
        command = ("EVALSHA", self.script.sha, len(keys), *keys, *call.argv())
        try:
            reply = self.client.execute_command(*command, **{NEVER_DECODE: True})
        except redis.exceptions.NoScriptError:
            self.load()
            reply = self.client.execute_command(*command, **{NEVER_DECODE: True})
        return call.parse(reply)

    def queue(self, pipe: Any, call: Call[Any]) -> None:
        """Queue the call; its reply (in the pipeline's) is read with `call.parse`."""
        keys = call.keys()
        pipe.execute_command("EVALSHA", self.script.sha, len(keys), *keys, *call.argv())

    def load(self) -> None:
        for node in primaries(self.client):
            node.script_load(self.text)


def pipelined(client: redis.Redis, build: Callable[[Any], None], scripts: tuple[Lua, ...]) -> list:
    """Execute the commands `build(pipe)` queues (not a transaction: they may span slots),
    loading `scripts` and running them once more if Redis lacked one. Only for commands
    that may run twice (reads, idempotent writes)."""
    for attempt in (1, 2):
        try:
            return run(client, recorded(build))
        except redis.exceptions.NoScriptError:
            if attempt == 2:
                raise
            for lua in scripts:
                lua.load()
    raise AssertionError("unreachable")
