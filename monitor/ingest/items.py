"""The items stream: what polling appends and processing reads (group `processors`)."""

from __future__ import annotations

import redis

from monitor.model import Item
from monitor.store.keys import Keys
from monitor.store.scripts import script
from monitor.store.streams import StreamGroup

_APPEND_TRIMMED = script("append_trimmed", "monitor.ingest")


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
        self._append = client.register_script(_APPEND_TRIMMED)
        self._counter = keys.counter(keys.items)

    def append(self, items: list[Item]) -> list[str]:
        """Append the items; trim only what every group has acked (never a pending item)."""
        if not items:
            return []
        entries = self._append(
            keys=[self.stream, self._counter],
            args=[self.maxlen, self.field, *(item.to_json() for item in items)],
        )
        return [str(entry) for entry in entries]
