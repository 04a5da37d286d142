"""The search index of retained items: where each word stands in the retained items that
hold it, kept as items are retained and dropped with them, so that a query - phrases
included - runs over everything retained without reading every item.

    document n          the n-th item retained (numbered by retain.lua with its entry)
    {retained}:docs:<b> string: 32 bytes per document of block b (n // SEARCH_BLOCK): its
                        entry id, report time, outcome and story
    search:<b>:<token>  string: the occurrences of the token in the documents of block b,
                        3 bytes each: the document's number in the block (2) and the word's
                        position in its field, modulo 256 (1)
    words:<b>:<field>   sorted set: the words of a field with postings in block b (wildcards)

A token is a field's letter and a folded word: `tputin` (title), `xputin` (text), `sreuters`
(source), `len` (language); every word is posted, the commonest too. A phrase is decided
from its words' positions (each following the one before); positions are kept modulo 256,
so for a field longer than 256 words that is only likely: the documents with such a field
are posted under `L` and the field's letter (`Lx`), and a search reads those it finds by a
phrase. Blocks go whole, once every document of theirs has left the retained stream
(`trim`); until then a search skips documents below the stream's oldest. Postings are plain
keys without tags: on a cluster they spread by name.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
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

LONG = "L"  # the letter of the tokens posting documents whose field is longer than WRAP words
WRAP = 256  # positions are kept modulo this (one byte)
OCCURRENCE = np.dtype([("doc", ">u2"), ("pos", "u1")])  # a posting, as stored


def occurrences_of(
    title: str,
    text: str,
    source: str,
    lang: str,
    folded: tuple[list[str], list[str]] | None = None,
) -> dict[str, bytearray]:
    """The tokens a retained item is found by (what a rule's fields read of it), each with
    its positions in its field (the order of its words, as rules count them), modulo WRAP,
    one byte each. `folded`: the words of title and text, when tokenised already."""
    found: dict[str, bytearray] = {}
    title_words, text_words = folded if folded is not None else (words(title), words(text))
    for letter, found_words in (("t", title_words), ("x", text_words), ("s", words(source))):
        for position, word in enumerate(found_words):
            token = letter + word
            if token in found:
                found[token].append(position % WRAP)
            else:
                found[token] = bytearray((position % WRAP,))
        if len(found_words) > WRAP:
            found[LONG + letter] = bytearray(1)
    if lang:
        found["l" + fold(lang)] = bytearray(1)
    return found


def postings_of(offset: int, occurrences: dict[str, bytearray]) -> dict[str, bytes]:
    """What each token's postings gain for the document at `offset` in its block."""
    high, low = divmod(offset, 256)
    return {
        token: bytes(x for p in positions for x in (high, low, p))
        for token, positions in occurrences.items()
    }


def packed(occurrences: dict[str, bytearray]) -> bytes:
    """The occurrences as post.lua reads them: for each token, its length (2 bytes), the
    token, the number of its positions (2 bytes) and the positions (1 byte each)."""
    parts: list[bytes | bytearray] = []
    for token, positions in occurrences.items():
        name = token.encode()
        parts += (len(name).to_bytes(2, "big"), name, len(positions).to_bytes(2, "big"), positions)
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
    """Post a document's occurrences under their tokens in one block (one server)."""

    script: ClassVar[str] = "post"
    package: ClassVar[str] = "monitor.retained"

    postings: str
    words: str
    posting: bytes
    occurrences: bytes

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

    def add(self, doc: int, occurrences: dict[str, bytearray]) -> None:
        """Post document `doc`'s occurrences under their tokens (`occurrences_of`); a token
        new to the block also goes into its field's words. One script on one server; a
        pipeline (two when a token is new to the block) on a cluster, where the postings
        spread over slots."""
        block, offset = divmod(doc, self.block)
        prefix = self.keys.search_postings(block)
        if not self.cluster:
            words = self.keys.search_words(block, "")
            posting = offset.to_bytes(2, "big")
            self._post(PostCall(prefix, words, posting, packed(occurrences)))
        else:
            self._post_spread(block, prefix, postings_of(offset, occurrences))
        if doc % TRIM_EVERY == 0:
            self.trim()

    def _post_spread(self, block: int, prefix: str, postings: dict[str, bytes]) -> None:
        tokens = list(postings)
        commands: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
            (("APPEND", prefix + t, postings[t]), {}) for t in tokens
        ]
        lengths = run(self.client, commands)
        new: dict[str, list[str]] = {}
        for token, length in zip(tokens, lengths, strict=True):
            if int(length) == len(postings[token]):  # the token's first in this block
                new.setdefault(token[0], []).append(token[1:])
        if new:
            added: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
            for letter, found in new.items():
                key = self.keys.search_words(block, letter)
                added.append((("ZADD", key, *(x for w in found for x in (0, w))), {}))
            run(self.client, added)

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
        for letter in (*FIELD_LETTERS.values(), LONG):
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
        """The occurrences of each token in the documents of `bounds`: sorted, unique
        numbers `document * WRAP + position % WRAP` (`docs_of` gives the documents)."""
        blocks = list(bounds.blocks(self.block))
        commands = [
            (("GET", self.keys.search_postings(b) + t), {NEVER_DECODE: True})
            for t in tokens
            for b in blocks
        ]
        replies = iter(run(self.client, commands)) if commands else iter(())
        found = {}
        low, high = bounds.first * WRAP, (bounds.last + 1) * WRAP
        for token in tokens:
            parts = []
            for b in blocks:
                raw = next(replies)
                if raw:
                    table = np.frombuffer(raw, OCCURRENCE)
                    docs = table["doc"].astype(np.int64) + b * self.block
                    parts.append(docs * WRAP + table["pos"])
            keys = np.concatenate(parts) if parts else np.empty(0, np.int64)
            found[token] = _sorted_unique(keys[(keys >= low) & (keys < high)])
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


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """The values sorted, once each (posted in document order, they mostly are sorted)."""
    if len(values) > 1 and not bool(np.all(values[1:] >= values[:-1])):
        return np.unique(values)
    if len(values) > 1:
        return values[np.concatenate(([True], values[1:] != values[:-1]))]
    return values


def docs_of(occurrences: np.ndarray) -> np.ndarray:
    """The documents (sorted, unique) of sorted occurrences (`SearchIndex.postings`)."""
    return _sorted_unique(occurrences // WRAP)
