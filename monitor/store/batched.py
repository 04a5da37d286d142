"""Redis commands for coroutines: whatever the coroutines on an event loop ask for while the
previous round trip is under way goes out together, in one pipeline, from one thread.

The poll scheduler runs thousands of polls a second on the HTTP loop, each a few small
commands (read the feed's state, take its lease, write its state). A blocking call would
stall every request on the loop (and a Redis outage would stall them for the socket
timeout); one thread hand-off or one asyncio connection round trip per command costs more
than the poll itself. Here a command costs a share of one pipeline, and the loop never
blocks. Works with any client that has `pipeline(transaction=False)`: standalone, Sentinel
or Cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

import redis
from redis.client import Pipeline

from monitor.store.connection import Commands, recorded, run

Build = Callable[[Pipeline], object]  # adds a unit's commands to the pipeline
IDLE = 5.0  # seconds without work after which the thread ends (a new one starts on demand)
MAX_BATCH = 1000  # commands' units sent in one pipeline at most


class _Unit:
    __slots__ = ("build", "future", "loop")

    def __init__(self, build: Build, future: asyncio.Future, loop: asyncio.AbstractEventLoop):
        self.build = build
        self.future = future
        self.loop = loop


class BatchedRedis:
    """`await redis_io(lambda pipe: (pipe.hgetall(a), pipe.sismember(b, m)))` -> the replies
    of the commands that unit added, in order. A reply that is an error raises it (the first
    one); a connection failure raises for every unit of the batch."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._queue: queue.SimpleQueue[_Unit] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    async def __call__(self, build: Build) -> list[Any]:
        loop = asyncio.get_running_loop()
        unit = _Unit(build, loop.create_future(), loop)
        with self._lock:
            self._queue.put(unit)
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="redis-batch", daemon=True)
                self._thread.start()
        replies: list[Any] = await unit.future
        return replies

    def _serve(self) -> None:
        while True:
            try:
                units = [self._queue.get(timeout=IDLE)]
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            while len(units) < MAX_BATCH:
                try:
                    units.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._send(units)
            except Exception as exc:  # a thread boundary: fail this batch, serve the next
                for unit in units:
                    with contextlib.suppress(RuntimeError):  # its loop is closed
                        unit.loop.call_soon_threadsafe(_resolve, [(unit, exc)])

    def _send(self, units: list[_Unit]) -> None:
        commands: Commands = []
        spans: list[tuple[int, int] | BaseException] = []
        for unit in units:
            try:
                # recorded apart (a cluster pipeline's command_stack is not its queue)
                mine = recorded(unit.build)
            except Exception as exc:  # a bad argument: that unit's error, not the batch's
                spans.append(exc)
                continue
            spans.append((len(commands), len(commands) + len(mine)))
            commands += mine
        replies: list[Any] | BaseException
        try:
            replies = run(self.client, commands, raise_on_error=False) if commands else []
        except Exception as exc:  # the connection, or Redis as a whole: every unit's
            replies = exc
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Unit, Any]]] = {}
        for unit, span in zip(units, spans, strict=True):
            if isinstance(span, BaseException):
                outcome: Any = span
            elif isinstance(replies, BaseException):
                outcome = replies
            else:
                mine = replies[span[0] : span[1]]
                outcome = next((r for r in mine if isinstance(r, Exception)), mine)
            by_loop.setdefault(unit.loop, []).append((unit, outcome))
        for loop, done in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                loop.call_soon_threadsafe(_resolve, done)


def _resolve(done: list[tuple[_Unit, Any]]) -> None:
    for unit, outcome in done:
        if unit.future.done():  # cancelled meanwhile
            continue
        if isinstance(outcome, BaseException):
            unit.future.set_exception(outcome)
        else:
            unit.future.set_result(outcome)
