"""The Lua programs the monitor runs on Redis: one `.lua` file each, beside the Python that
calls it, with a header saying its KEYS, ARGV and reply. Read once, at import; registered
with `register_script` by their callers (EVALSHA, the script body sent only if Redis lacks
it). A line `-- include: NAME.lua` is replaced by that file of the same package (code two
scripts share)."""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import resources
from typing import Any

import redis

from monitor.store.connection import primaries, recorded, run

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
            return run(client, recorded(build))
        except redis.exceptions.NoScriptError:
            if attempt == 2:
                raise
            for lua in scripts:
                lua.load()
    raise AssertionError("unreachable")
