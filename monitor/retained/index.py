"""The search index of retained items: which retained items hold a word, kept as items are
retained and dropped with them, so that a query runs over everything retained without
reading every item.

    document n          the n-th item retained (numbered by retain.lua with its entry)
    {retained}:docs:<b> string: 32 bytes per document of block b (n // SEARCH_BLOCK): its
                        entry id, report time, outcome and story
    search:<b>:<token>  string: the documents of block b that hold the token, 2 bytes each
    words:<b>:<field>   sorted set: the words of a field with postings in block b (wildcards)

A token is a field's letter and a folded word: `tputin` (title), `xputin` (text), `sreuters`
(source), `len` (language). The commonest words (SKIPPED) have no postings: a query term
made only of them narrows nothing. Blocks go whole, once every document of theirs has left
the retained stream (`trim`); until then a search skips documents below the stream's oldest.
Postings are plain keys without tags: on a cluster they spread by name.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import redis
from redis.client import NEVER_DECODE

from monitor.model import Outcome
from monitor.store.connection import is_cluster, run
from monitor.store.keys import Keys
from monitor.store.scripts import Call, Lua
from monitor.text import fold, words

SEARCH_BLOCK = 65536  # documents per block: a posting is the document's number in its block
TRIM_EVERY = 1024  # documents between two looks for a block to drop
FIELD_LETTERS = {"title": "t", "text": "x", "source": "s", "lang": "l"}
OUTCOMES = tuple(Outcome)
# The 8-byte double and 2-byte sequence of the entry id come first (retain.lua packs them);
# Python packs the tail.
RECORD = struct.Struct(">dHIB16sx")
TAIL = struct.Struct(">IB16sx")
RECORD_DTYPE = np.dtype(
    [("ms", ">f8"), ("seq", ">u2"), ("time", ">u4"), ("outcome", "u1"), ("story", "S16"),
     ("pad", "u1")]
)  # fmt: skip
assert RECORD.size == RECORD_DTYPE.itemsize == 32

# The commonest English words: in nearly every text, so their postings would cost much and
# narrow nothing. A term made only of them is looked for in every document.
SKIPPED = frozenset(
    """a about after all also an and are as at be been but by can could did do does for from
    had has have he her his how i if in into is it its more not of on one or our out over s
    said she so some than that the their them then there these they this to up was we were
    what when which who will with would you""".split()
)


def tokens_of(
    title: str,
    text: str,
    source: str,
    lang: str,
    folded: tuple[list[str], list[str]] | None = None,
) -> set[str]:
    """The tokens a retained item is found by (what a rule's fields read of it). `folded`:
    the words of title and text, when tokenised already."""
    title_words, text_words = folded if folded is not None else (words(title), words(text))
    found = {"t" + w for w in title_words if w not in SKIPPED}
    found.update("x" + w for w in text_words if w not in SKIPPED)
    found.update("s" + w for w in words(source) if w not in SKIPPED)
    if lang:
        found.add("l" + fold(lang))
    return found


def packed(tokens: Iterable[str]) -> bytes:
    """Tokens as post.lua reads them: each one's length (2 bytes), then the token."""
    parts: list[bytes] = []
    for token in tokens:
        name = token.encode()
        parts += (len(name).to_bytes(2, "big"), name)
    return b"".join(parts)


def entry_id(record: np.void) -> str:
    """The retained stream's id of a document's record."""
    return f"{int(record['ms'])}-{int(record['seq'])}"


def record_tail(report_time: float | None, outcome: Outcome, story: str) -> bytes:
    """What retain.lua writes after the entry id of a document's record."""
    when = int(report_time) if report_time and report_time > 0 else 0
    return TAIL.pack(min(when, 2**32 - 1), OUTCOMES.index(outcome), story.encode()[:16])


@dataclass(frozen=True, slots=True)
class Bounds:
    """The documents a search may find: numbers `first` to `last` (none when first > last).
    `unindexed`: the stream still holds entries retained before the index existed."""

    first: int
    last: int
    unindexed: bool = False

    def blocks(self, size: int) -> range:
        """The numbers of the blocks (of `size` documents) they lie in."""
        return (
            range(self.first // size, self.last // size + 1)
            if self.first <= self.last
            else range(0)
        )


@dataclass(frozen=True, slots=True)
class PostCall(Call[int]):
    """Post a document under its tokens in one block (one server)."""

    script: ClassVar[str] = "post"
    package: ClassVar[str] = "monitor.retained"

    postings: str
    words: str
    posting: bytes
    tokens: bytes  # packed

    def parse(self, reply: Any) -> int:
        return int(reply)


class SearchIndex:
    """Postings of retained items in Redis: written by `RetainedItems.append`, read by the
    pipeline's search (monitor/pipeline/search.py)."""

    def __init__(self, client: redis.Redis, keys: Keys, *, block: int = SEARCH_BLOCK) -> None:
        if not 0 < block <= 65536:
            raise ValueError("a block holds 1 to 65,536 documents (2-byte postings)")
        self.client = client
        self.keys = keys
        self.block = block  # documents per block (SEARCH_BLOCK; tests make it small)
        self.stream = keys.retained
        self.counter = keys.counter(keys.retained)
        self.cluster = is_cluster(client)
        self._post = Lua(client, PostCall)

    # --- writing ------------------------------------------------------------------------

    def add(self, doc: int, tokens: Iterable[str]) -> None:
        """Post document `doc` under each token; a token new to the block also goes into its
        field's words. One script on one server; a pipeline (two when a token is new to
        the block) on a cluster, where the postings spread over slots."""
        block, offset = divmod(doc, self.block)
        prefix = self.keys.search_postings(block)
        posting = offset.to_bytes(2, "big")
        tokens = list(tokens)
        if not self.cluster:
            words = self.keys.search_words(block, "")
            self._post(PostCall(prefix, words, posting, packed(tokens)))
        else:
            self._post_spread(block, prefix, posting, tokens)
        if doc % TRIM_EVERY == 0:
            self.trim()

    def _post_spread(self, block: int, prefix: str, posting: bytes, tokens: list[str]) -> None:
        lengths = run(self.client, [(("APPEND", prefix + t, posting), {}) for t in tokens])
        new: dict[str, list[str]] = {}
        for token, length in zip(tokens, lengths, strict=True):
            if int(length) == 2:  # the first posting of the token in this block
                new.setdefault(token[0], []).append(token[1:])
        if new:
            commands: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
            for letter, found in new.items():
                key = self.keys.search_words(block, letter)
                commands.append((("ZADD", key, *(x for w in found for x in (0, w))), {}))
            run(self.client, commands)

    def trim(self) -> int:
        """Drop the blocks all of whose documents have left the retained stream; how many."""
        bounds = self.bounds()
        dropped = 0
        block = bounds.first // self.block - 1
        while block >= 0 and self.client.exists(self.keys.retained_docs(block)):
            self._drop(block)
            dropped += 1
            block -= 1
        return dropped

    def _drop(self, block: int) -> None:
        prefix = self.keys.search_postings(block)
        for letter in FIELD_LETTERS.values():
            key = self.keys.search_words(block, letter)
            start = 0
            while found := self.client.zrange(key, start, start + 999):
                run(self.client, [(("UNLINK", prefix + letter + w), {}) for w in found])
                start += len(found)
            self.client.unlink(key)
        self.client.unlink(self.keys.retained_docs(block))

    # --- reading ------------------------------------------------------------------------

    def bounds(self) -> Bounds:
        """The documents still retained: from the stream's oldest entry to the last number."""
        oldest = self.client.xrange(self.stream, count=1)
        last = int(self.client.get(self.counter) or 0)
        if not oldest:
            return Bounds(last + 1, last)
        doc = oldest[0][1].get("doc")
        return Bounds(int(doc) if doc else 1, last, unindexed=not doc)

    def doc_at(self, entry: str, *, after: bool) -> int | None:
        """The first document retained at or after stream id `entry` (`after`), or the last
        at or before it; None when there is none, 0 when it predates the index."""
        if after:
            found = self.client.xrange(self.stream, min=entry, count=1)
        else:
            found = self.client.xrevrange(self.stream, max=entry, count=1)
        if not found:
            return None
        return int(found[0][1].get("doc") or 0)

    def postings(self, tokens: Sequence[str], bounds: Bounds) -> dict[str, np.ndarray]:
        """The documents (sorted, within `bounds`) that hold each token."""
        blocks = list(bounds.blocks(self.block))
        commands = [
            (("GET", self.keys.search_postings(b) + t), {NEVER_DECODE: True})
            for t in tokens
            for b in blocks
        ]
        replies = iter(run(self.client, commands)) if commands else iter(())
        found = {}
        for token in tokens:
            parts = [
                np.frombuffer(raw, dtype=">u2").astype(np.int64) + b * self.block
                for b in blocks
                if (raw := next(replies))
            ]
            docs = np.unique(np.concatenate(parts)) if parts else np.empty(0, np.int64)
            found[token] = docs[(docs >= bounds.first) & (docs <= bounds.last)]
        return found

    def words(self, letter: str, start: str, bounds: Bounds) -> set[str]:
        """The words of a field (by its letter) beginning with `start` in the blocks of
        `bounds`."""
        low = b"[" + start.encode()
        high = b"[" + start.encode() + b"\xff"
        commands: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
            (("ZRANGEBYLEX", self.keys.search_words(b, letter), low, high), {})
            for b in bounds.blocks(self.block)
        ]
        return {w for found in run(self.client, commands) for w in found} if commands else set()

    def records(self, docs: np.ndarray) -> np.ndarray:
        """The records of these documents (sorted numbers), in their order: one read of the
        span they cover in each block."""
        if not len(docs):
            return np.empty(0, RECORD_DTYPE)
        blocks = docs // self.block
        spans = []
        for block in np.unique(blocks):
            mine = docs[blocks == block] - block * self.block
            spans.append((int(block), mine, int(mine[0]), int(mine[-1])))
        size = RECORD.size
        commands = [
            (
                ("GETRANGE", self.keys.retained_docs(b), low * size, (high + 1) * size - 1),
                {NEVER_DECODE: True},
            )
            for b, _, low, high in spans
        ]
        parts = []
        for (_, mine, low, high), raw in zip(spans, run(self.client, commands), strict=True):
            table = np.zeros(high - low + 1, RECORD_DTYPE)
            got = np.frombuffer(raw, RECORD_DTYPE)  # short if the block's end is missing
            table[: len(got)] = got
            parts.append(table[mine - low])
        return np.concatenate(parts)
