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
from collections.abc import Iterable
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
    found: list[str] = []
    for paragraph in _PARAGRAPHS.split(text):
        found.extend(s.strip() for s in _SENTENCE_END.split(paragraph.strip()) if s.strip())
    return found


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


def _content(sentence: str) -> set[str]:
    return {_stem(w) for w in words(sentence) if len(w) > 2 and w not in _COMMON}


def _boilerplate(sentence: str) -> bool:
    lower = sentence.lower()
    return lower.startswith("related") or any(phrase in lower for phrase in _BOILERPLATE)


@dataclass(frozen=True, slots=True)
class _Sentence:
    text: str
    content: set[str]  # its content words (stemmed)
    hashes: list[int]  # theirs, in the same order
    figures: dict[str, int]  # its figures and their hashes


def _read(title: str, text: str) -> tuple[list[_Sentence], set[int]]:
    """The text's sentences (dateline aside) with their facts, and the hashes of the
    report's own facts (title included)."""
    hashes: dict[str, int] = {}  # a word's hash, computed once per report
    facts = {_figure_hash(f) for f in _figures(title)}
    body = _DATELINE.sub("", text, count=1)
    for part in (title, text[: len(text) - len(body)]):
        for w in _content(part):
            facts.add(hashes.setdefault(w, _word_hash(w)))
    found: list[_Sentence] = []
    for sentence in sentences(body):
        content = _content(sentence)
        mine = []
        for w in content:
            h = hashes.get(w)
            if h is None:
                h = hashes[w] = _word_hash(w)
            mine.append(h)
        numbers = (
            {f: _figure_hash(f) for f in _figures(sentence)} if _DIGIT.search(sentence) else {}
        )
        facts.update(mine)
        facts.update(numbers.values())
        found.append(_Sentence(sentence, content, mine, numbers))
    return found, facts


def _judged(read: list[_Sentence], seen: set[int] | frozenset[int]) -> list[Addition]:
    """The sentences with facts not in `seen` (at most SHOWN, in text order, each with the
    names and figures that made it new; none when nothing is known: a story's first)."""
    found: list[Addition] = []
    if not seen:
        return found
    for one in read:
        new_words = [w for w, h in zip(one.content, one.hashes, strict=True) if h not in seen]
        if not (new_words or one.figures):
            continue
        figures = [f for f, h in one.figures.items() if h not in seen]
        sentence = one.text
        if not (new_words or figures) or _boilerplate(sentence):
            continue
        if sum(not w.isdigit() for w in words(sentence)) < MIN_WORDS:
            continue
        unknown = set(new_words)
        names = [n for n in dict.fromkeys(_names(sentence)) if unknown.intersection(_content(n))]
        claim = len(new_words) >= CLAIM_WORDS and len(new_words) >= CLAIM_SHARE * len(one.content)
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
    read, facts = _read(title, text)
    return _judged(read, seen), facts


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

    def measure(self, story_id: str, title: str, text: str) -> list[Addition]:
        """What the report adds to the story's earlier reports; its facts join them in the
        same round trip (facts.lua: the story's facts before it come back)."""
        read, mine = _read(title, text)
        packed = np.fromiter(mine, dtype="<u4", count=len(mine)).tobytes()
        call = FactsCall(self.keys.story_facts(story_id), int(self.retention), packed)
        known = self._facts.raw(call)
        return _judged(read, set(np.frombuffer(known, dtype="<u4").tolist()))
