"""The retained-items stream: processed items (text, metadata, story) kept for a while, in
processing order, so that rules can be run over the past (backfills) and the desk can show
and search them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import redis

from monitor.model import Article, Item, Outcome, Placement
from monitor.store.keys import Keys


@dataclass(frozen=True, slots=True)
class Retained:
    """A processed item as kept for backfills."""

    entry_id: str
    item: Item
    article: Article
    url: str
    placement: Placement

    @property
    def processed_at(self) -> float:
        return int(self.entry_id.split("-")[0]) / 1000


class RetainedItems:
    """Processed items (text, metadata, story) kept for `retention` seconds and at most
    ~`maxlen` of them, in processing order, so that rules can be run over the past."""

    def __init__(self, client: redis.Redis, keys: Keys, *, retention: float, maxlen: int) -> None:
        self.client = client
        self.key = keys.retained
        self.retention = retention
        self.maxlen = maxlen

    def append(self, item: Item, article: Article, url: str, placement: Placement) -> str:
        """Keep the item; its entry id."""
        fields = {
            "item": item.to_json(),
            "text": article.text,
            "title": article.title,
            "language": article.language,
            "url": url,
            "story": placement.story_id,
            "outcome": str(placement.outcome),
            "duplicate_of": placement.duplicate_of or "",
            "text_from": article.text_from,
        }
        min_id = f"{int((time.time() - self.retention) * 1000)}-0"
        pipe = self.client.pipeline(transaction=False)
        pipe.xadd(self.key, fields, maxlen=self.maxlen, approximate=True)
        pipe.xtrim(self.key, minid=min_id, approximate=True)
        return str(pipe.execute()[0])

    def get(self, entry_ids: list[str]) -> list[Retained | None]:
        """The retained items with these entry ids (None for those trimmed since)."""
        pipe = self.client.pipeline(transaction=False)
        for entry_id in entry_ids:
            pipe.xrange(self.key, min=entry_id, max=entry_id)
        return [retained_entry(*found[0]) if found else None for found in pipe.execute()]

    def read(self, since: float, batch: int = 500) -> Iterator[Retained]:
        """Items processed at or after `since` (Unix seconds), oldest first."""
        start = f"{int(since * 1000)}-0"
        while True:
            entries = self.client.xrange(self.key, min=start, count=batch)
            for entry_id, fields in entries:
                yield retained_entry(entry_id, fields)
            if len(entries) < batch:
                return
            start = "(" + entries[-1][0]

    def newest_entries(
        self, since: float, batch: int = 500
    ) -> Iterator[tuple[str, dict[str, str]]]:
        """The raw entries (id, fields) processed at or after `since`, newest first: a
        caller may look at the raw text before parsing (`retained_entry`)."""
        high, low = "+", f"{int(since * 1000)}-0"
        while True:
            entries = self.client.xrevrange(self.key, max=high, min=low, count=batch)
            yield from entries
            if len(entries) < batch:
                return
            high = "(" + entries[-1][0]

    def count(self) -> int:
        return int(self.client.xlen(self.key))


def retained_entry(entry_id: str, fields: dict[str, str]) -> Retained:
    item = Item.from_json(fields["item"])
    text_from = fields.get("text_from", "page")  # kept since text_from exists
    article = Article(
        text=fields["text"],
        title=fields["title"],
        language=fields["language"],
        from_page=text_from == "page",
        summary_only=text_from == "summary",
    )
    placement = Placement(
        outcome=Outcome(fields["outcome"]),
        story_id=fields["story"],
        duplicate_of=fields["duplicate_of"] or None,
    )
    return Retained(entry_id, item, article, fields["url"], placement)
