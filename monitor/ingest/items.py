"""The items stream: what polling appends and processing reads (group `processors`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import redis

from monitor.model import Item
from monitor.store.keys import Keys
from monitor.store.scripts import KEY, SPREAD, Call, Lua
from monitor.store.streams import StreamGroup


@dataclass(frozen=True, slots=True)
class Appended:
    """append_trimmed.lua's reply: the new entries' ids, in order."""

    ids: list[str]


@dataclass(frozen=True, slots=True)
class AppendTrimmedCall(Call[Appended]):
    """Append values to a stream read by groups, trimming only what they are done with."""

    script: ClassVar[str] = "append_trimmed"
    package: ClassVar[str] = "monitor.ingest"

    stream: str = field(metadata=KEY)
    counter: str = field(metadata=KEY)
    maxlen: int
    field_name: str
    values: list[str] = field(metadata=SPREAD)

    def parse(self, reply: Any) -> Appended:
        return Appended([str(entry) for entry in reply])


class ItemsQueue(StreamGroup[Item]):
    """The durable `items` stream between polling and processing, read by the group
    `processors`: each item goes to one daemon; failures end in `items:dead`."""

    GROUP = "processors"

    def __init__(self, client: redis.Redis, keys: Keys, *, maxlen: int) -> None:
        super().__init__(
            client,
            keys.items,
            self.GROUP,
            field="item",
            decode=Item.from_json,
            dead_stream=keys.items_dead,
            dead_maxlen=maxlen,
        )
        self.maxlen = maxlen
        self._append = Lua(client, AppendTrimmedCall)
        self._counter = keys.counter(keys.items)

    def append(self, items: list[Item]) -> list[str]:
        """Append the items; trim only what every group has acked (never a pending item)."""
        if not items:
            return []
        values = [item.to_json() for item in items]
        return self._append(
            AppendTrimmedCall(self.stream, self._counter, self.maxlen, self.field, values)
        ).ids
