"""What a report adds to its story: the sentences carrying a name, a figure or a claim that
none of the story's earlier reports carried (sentence-level novelty, as in the TREC Novelty
track).

What a story has said is kept as a set of facts - the hashes of its content words and
figures (`facts:<story>`, 4 bytes each) - to which each report's facts are added once it
is measured: a report is measured against every report of its story retained before it,
whatever their report times, so a late report older than the others adds nothing they
already said. A sentence is new when it names someone or something new (a capitalised
word the story never used), gives a new figure, or says something mostly in new words
(a claim or a quote). Datelines, agency credits and outlet boilerplate ("Reporting by",
"Copyright", "Sign up") never count.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import redis
import regex

from monitor.model import Addition
from monitor.store.keys import Keys
from monitor.store.scripts import KEY, Call, Lua
from monitor.text import fold, words

SHOWN = 5  # sentences an addition list keeps, in text order
CLAIM_WORDS = 5  # a sentence of new words needs this many new ones...
CLAIM_SHARE = 0.6  # ...making this share of its content words
MIN_WORDS = 5  # shorter lines are headings, datelines, time stamps: never new

_PARAGRAPHS = re.compile(r"\s*\n\s*")  # a line is a paragraph (or a heading)
_SENTENCE_END = regex.compile(
    r"(?<=[.!?\u2026][\"'\u201d\u2019)\]]*)\s+(?=[\"'\u201c\u2018(\[]*[\p{Lu}\d])"
)
_DATELINE = regex.compile(
    r"^\s*(?:[\p{Lu}][\p{L}.'\u2019 -]{1,40}(?:,\s*[\p{L}]{3,9}\.?\s+\d{1,2})?\s*)?"
    r"\([\p{L}][\p{L}\d .&/-]{0,30}\)\s*[-\u2014\u2013:]+\s*"
    r"|^\s*\p{Lu}[\p{Lu} .'\u2019-]{2,40}(?:,\s*[\p{L}]{3,9}\.?\s+\d{1,2})?\s*[-\u2014\u2013]+\s+"
)
_BOILERPLATE = (  # outlet boilerplate: a sentence with one of these never counts
    "copyright",
    "\u00a9",
    "all rights reserved",
    "reporting by",
    "editing by",
    "writing by",
    "contributed to this report",
    "sign up",
    "subscribe",
    "newsletter",
    "has been corrected",
    "has been updated",
    "click here",
    "follow us",
    "read more",
    "advertisement",
    "contact us",
)
_BOILERPLATE_FOUND = re.compile("^related|" + "|".join(map(re.escape, _BOILERPLATE)))
_DIGIT = re.compile(r"\d")
_APOSTROPHES = "'\u2019-"  # stripped from a name's ends
_FIGURE = regex.compile(r"(?<![\p{L}\d])\d+(?:[.,]\d+)*(?:\s?%)?")
_CAPITALISED = regex.compile(r"\b\p{Lu}[\p{L}\p{M}'\u2019-]*")
_COMMON = frozenset(
    """a about above according across after again against ago all almost also although always
    among an and another any are around as at away back be because been before being below
    between both but by can could day days did do does done down during each early either
    even ever every few first for former from further get had has have he her here hers him
    his how however i if in including into is it its just last late later least less like
    made make many may me meanwhile might more most much must my near nearly neither never
    new next no nor not now of off often on once one only or other our out over own part per
    perhaps rather really recent recently said same say says see seen several she should
    since so some still such than that the their them then there these they this those
    though three through thus to today told too two under until up upon us very was we week
    well were what when where whether which while who whom whose why will with within
    without would year years yet you your stated states fresh large following monday tuesday
    wednesday thursday friday saturday sunday january february march april june july august
    september october november december mr mrs ms dr""".split()
)


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 4 and word[-1] == "s" and word[-2] != "s" else word


def _word_hash(word: str) -> int:
    return zlib.crc32(word.encode())


def _figure_hash(figure: str) -> int:
    return zlib.crc32(figure.encode(), 1)  # another start: a figure is never a word


def sentences(text: str) -> list[str]:
    """The text's sentences, in order (lines never join)."""
    return list(_sentences(text))


def _sentences(text: str) -> Iterator[str]:
    """The text's sentences, read as they are asked for."""
    at = 0
    for line in _PARAGRAPHS.finditer(text):
        yield from _split_line(text[at : line.start()])
        at = line.end()
    yield from _split_line(text[at:])


def _split_line(paragraph: str) -> Iterator[str]:
    for sentence in _SENTENCE_END.split(paragraph.strip()):
        if sentence := sentence.strip():
            yield sentence


def _figures(sentence: str) -> list[str]:
    return [m.group().replace(",", "").replace(" ", "") for m in _FIGURE.finditer(sentence)]


def _names(sentence: str) -> list[str]:
    """Runs of capitalised words: names, places, organisations ("Defense Minister Andrey
    Belousov"); a sentence's first word alone is none ("Police said")."""
    found = []
    run: list[regex.Match[str]] = []
    for m in [*_CAPITALISED.finditer(sentence), None]:
        if m is not None and run and sentence[run[-1].end() : m.start()] == " ":
            run.append(m)
            continue
        if run:
            at_start = not sentence[: run[0].start()].strip(" \"'\u201c\u2018([")
            name = sentence[run[0].start() : run[-1].end()].strip(_APOSTROPHES)
            if not (at_start and len(run) == 1) and len(name) > 1 and fold(name) not in _COMMON:
                found.append(name)
        run = [m] if m is not None else []
    return found


_UNSEEN = ("", 0)
_CACHED = 200_000  # words whose facts a process keeps (a day's news uses far fewer)
_word_facts: dict[str, tuple[str, int] | None] = {}  # a folded word's stem and its hash


def _facts(found: Iterable[str]) -> dict[str, int]:
    """The content words (stemmed) among folded words, with their hashes."""
    cache = _word_facts
    out: dict[str, int] = {}
    for w in found:
        fact = cache.get(w, _UNSEEN)
        if fact is _UNSEEN:
            if len(cache) >= _CACHED:
                cache.clear()
            stem = _stem(w)
            fact = cache[w] = (stem, _word_hash(stem)) if len(w) > 2 and w not in _COMMON else None
        if fact is not None:
            out[fact[0]] = fact[1]
    return out


def _boilerplate(sentence: str) -> bool:
    return _BOILERPLATE_FOUND.search(sentence.lower()) is not None


@dataclass(frozen=True, slots=True)
class _Read:
    """A report as read for what it may add: its text after the dateline, and the hashes of
    all its facts (title and dateline included)."""

    body: str
    facts: set[int]


def _read(title: str, text: str, folded: tuple[list[str], list[str]] | None = None) -> _Read:
    """The report's facts: the content words of its title and whole text (dateline
    included) and the figures of its title and of its text after the dateline. `folded`:
    the words of title and text, when tokenised already (the pipeline's analysis has
    them)."""
    body = _DATELINE.sub("", text, count=1)
    title_words, text_words = folded if folded is not None else (words(title), words(text))
    facts = {_figure_hash(f) for f in _figures(title)}
    facts.update(_figure_hash(f) for f in _figures(body))
    facts.update(_facts(set(title_words).union(text_words)).values())
    return _Read(body, facts)


def _judged(read: _Read, seen: set[int] | frozenset[int]) -> list[Addition]:
    """The sentences with facts not in `seen` (at most SHOWN, in text order, each with the
    names and figures that made it new; none when nothing is known: a story's first).
    Sentences are read one by one only when the report has a fact the story lacks."""
    found: list[Addition] = []
    if not seen or read.facts <= seen:
        return found
    for sentence in _sentences(read.body):
        folded = words(sentence)
        content = _facts(folded)
        new_words = [w for w, h in content.items() if h not in seen]
        figures = (
            [f for f in dict.fromkeys(_figures(sentence)) if _figure_hash(f) not in seen]
            if _DIGIT.search(sentence)
            else []
        )
        if not (new_words or figures) or _boilerplate(sentence):
            continue
        if len(folded) - sum(map(str.isdigit, folded)) < MIN_WORDS:
            continue
        unknown = set(new_words)
        names = [
            n for n in dict.fromkeys(_names(sentence)) if unknown.intersection(_facts(words(n)))
        ]
        claim = len(new_words) >= CLAIM_WORDS and len(new_words) >= CLAIM_SHARE * len(content)
        if figures or names or claim:
            found.append(Addition(sentence=sentence, names=tuple(names), figures=tuple(figures)))
            if len(found) == SHOWN:
                break
    return found


def measured(title: str, text: str, known: Iterable[int]) -> tuple[list[Addition], set[int]]:
    """The sentences of `text` with facts not in `known` (at most SHOWN, in text order,
    each with the names and figures that made it new; none when nothing is known: a
    story's first report), and the hashes of the report's own facts (title included)."""
    seen = known if isinstance(known, (set, frozenset)) else set(known)
    read = _read(title, text)
    return _judged(read, seen), read.facts


def facts_of(title: str, text: str) -> set[int]:
    """The hashes of a report's facts: its content words and figures (title included)."""
    return measured(title, text, ())[1]


def additions(text: str, known: Iterable[int]) -> list[Addition]:
    """The sentences of `text` with facts not in `known` (hashes: `facts_of`)."""
    return measured("", text, known)[0]


@dataclass(frozen=True, slots=True)
class FactsCall(Call[bytes]):
    """Read a story's facts, and add a report's (those new to it)."""

    script: ClassVar[str] = "facts"
    package: ClassVar[str] = "monitor.retained"

    facts: str = field(metadata=KEY)
    retention: int
    mine: bytes

    def parse(self, reply: Any) -> bytes:
        return reply or b""


class StoryFacts:
    """The facts each story has carried so far, in Redis (`facts:<story>`: 4-byte hashes,
    appended), kept `retention` seconds after the story's last report."""

    def __init__(self, client: redis.Redis, keys: Keys, *, retention: float) -> None:
        self.client = client
        self.keys = keys
        self.retention = retention
        self._facts = Lua(client, FactsCall)

    def measure(
        self,
        story_id: str,
        title: str,
        text: str,
        folded: tuple[list[str], list[str]] | None = None,
    ) -> list[Addition]:
        """What the report adds to the story's earlier reports; its facts join them in the
        same round trip (facts.lua: the story's facts before it come back). `folded`: the
        words of title and text, when tokenised already."""
        read = _read(title, text, folded)
        packed = np.fromiter(read.facts, dtype="<u4", count=len(read.facts)).tobytes()
        call = FactsCall(self.keys.story_facts(story_id), int(self.retention), packed)
        known = self._facts.raw(call)
        return _judged(read, set(np.frombuffer(known, dtype="<u4").tolist()))
