"""The retained-items stream: processed items (text, metadata, story) kept for a while, in
processing order, so that rules can be run over the past (backfills) and the desk can show
and search them. Each is numbered and indexed as it is kept (monitor/retained/index.py),
and its postings leave with it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import redis

from monitor.model import Article, Item, Outcome, Placement
from monitor.retained.index import SEARCH_BLOCK, SearchIndex, record_tail, tokens_of
from monitor.store.keys import Keys
from monitor.store.scripts import KEY, SPREAD, Call, Lua


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


@dataclass(frozen=True, slots=True)
class Kept:
    """retain.lua's reply: the entry's id and its document number."""

    entry_id: str
    doc: int


@dataclass(frozen=True, slots=True)
class RetainCall(Call[Kept]):
    """Number an item, append it to the retained stream (trimmed), record its document."""

    script: ClassVar[str] = "retain"
    package: ClassVar[str] = "monitor.retained"

    stream: str = field(metadata=KEY)
    counter: str = field(metadata=KEY)
    maxlen: int
    min_id: str
    docs: str
    block: int
    record: bytes
    fields: list[str] = field(metadata=SPREAD)

    def parse(self, reply: Any) -> Kept:
        entry, doc = reply
        return Kept(entry if isinstance(entry, str) else entry.decode(), int(doc))


class RetainedItems:
    """Processed items (text, metadata, story) kept for `retention` seconds and at most
    ~`maxlen` of them, in processing order, so that rules can be run over the past and
    searched (`index`)."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        retention: float,
        maxlen: int,
        block: int = SEARCH_BLOCK,
    ) -> None:
        self.client = client
        self.keys = keys
        self.key = keys.retained
        self.retention = retention
        self.maxlen = maxlen
        self.index = SearchIndex(client, keys, block=block)
        self._retain = Lua(client, RetainCall)

    def append(
        self,
        item: Item,
        article: Article,
        url: str,
        placement: Placement,
        folded: tuple[list[str], list[str]] | None = None,
    ) -> str:
        """Keep the item and index it; its entry id. `folded`: the folded words of its title
        (the item's, else the article's) and of the article's text, when read already."""
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
        when = item.time or article.published
        kept = self._retain(
            RetainCall(
                stream=self.key,
                counter=self.keys.counter(self.key),
                maxlen=self.maxlen,
                min_id=f"{int((time.time() - self.retention) * 1000)}-0",
                docs=self.keys.retained_docs(0)[:-1],
                block=self.index.block,
                record=record_tail(
                    when.timestamp() if when else None, placement.outcome, placement.story_id
                ),
                fields=[x for pair in fields.items() for x in pair],
            )
        )
        title = item.title or article.title
        found = tokens_of(title, article.text, item.source, article.language, folded)
        self.index.add(kept.doc, found)
        return kept.entry_id

    def get(self, entry_ids: list[str]) -> list[Retained | None]:
        """The retained items with these entry ids (None for those trimmed since)."""
        return [retained_entry(*found) if found else None for found in self.entries(entry_ids)]

    def entries(self, entry_ids: list[str]) -> list[tuple[str, dict[str, str]] | None]:
        """The raw entries (id, fields) with these ids (None for those trimmed since)."""
        pipe = self.client.pipeline(transaction=False)
        for entry_id in entry_ids:
            pipe.xrange(self.key, min=entry_id, max=entry_id)
        return [found[0] if found else None for found in pipe.execute()]

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
