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

import numpy as np
import redis
import regex
from redis.client import NEVER_DECODE

from monitor.model import Addition
from monitor.store.keys import Keys
from monitor.text import fold, words

SHOWN = 5  # sentences an addition list keeps, in text order
CLAIM_WORDS = 5  # a sentence of new words needs this many new ones...
CLAIM_SHARE = 0.6  # ...making this share of its content words

_PARAGRAPHS = re.compile(r"\s*\n\s*")  # a line is a paragraph (or a heading)
_SENTENCE_END = regex.compile(
    r"(?<=[.!?\u2026][\"'\u201d\u2019)\]]*)\s+(?=[\"'\u201c\u2018(\[]*[\p{Lu}\d])"
)
_DATELINE = regex.compile(
    r"^\s*(?:[\p{Lu}][\p{L}.'\u2019 -]{1,40}(?:,\s*[\p{L}]{3,9}\.?\s+\d{1,2})?\s*)?"
    r"\([\p{L}][\p{L}\d .&/-]{0,30}\)\s*[-\u2014\u2013:]+\s*"
    r"|^\s*\p{Lu}[\p{Lu} .'\u2019-]{2,40}(?:,\s*[\p{L}]{3,9}\.?\s+\d{1,2})?\s*[-\u2014\u2013]+\s+"
)
_BOILERPLATE = regex.compile(
    r"(?i)copyright|©|\ball rights reserved\b|^\W*(?:additional\s+)?(?:reporting|writing|editing)"
    r"\s+by\b|\bcontributed to this report\b|\bsign up\b|\bsubscribe\b|\bnewsletter\b"
    r"|\bhas been (?:corrected|updated)\b|\bclick here\b|\bfollow (?:us|him|her)\b"
    r"|\bread more\b|^\W*related\b|\badvertisement\b|\bcontact us\b"
)
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
    return word[:-1] if len(word) > 4 and word.endswith("s") and not word.endswith("ss") else word


def _hash(unit: str) -> int:
    return zlib.crc32(unit.encode())


def sentences(text: str) -> list[str]:
    """The text's sentences, in order (lines never join)."""
    found: list[str] = []
    for paragraph in _PARAGRAPHS.split(text):
        found.extend(s.strip() for s in _SENTENCE_END.split(paragraph.strip()) if s.strip())
    return found


def _figures(sentence: str) -> list[str]:
    return [m.group().replace(",", "").replace(" ", "") for m in _FIGURE.finditer(sentence)]


def _names(sentence: str) -> list[str]:
    """Capitalised words: names, places, organisations (a sentence's first word only when
    the next is capitalised too: "Police said" names nobody, "John Smith said" does)."""
    found = []
    matches = list(_CAPITALISED.finditer(sentence))
    for n, m in enumerate(matches):
        at_start = not sentence[: m.start()].strip(" \"'\u201c\u2018([")
        joined = n + 1 < len(matches) and sentence[m.end() : matches[n + 1].start()] == " "
        if at_start and not joined:
            continue
        name = m.group().strip(_APOSTROPHES)
        if len(name) > 1 and fold(name) not in _COMMON:
            found.append(name)
    return found


def _content(sentence: str) -> set[str]:
    return {_stem(w) for w in words(sentence) if len(w) > 2 and w not in _COMMON}


def facts_of(title: str, text: str) -> set[int]:
    """The hashes of a report's facts: its content words and figures (title included)."""
    units = {"w:" + w for w in _content(title) | _content(text)}
    units.update("f:" + f for f in _figures(title) + _figures(text))
    return {_hash(u) for u in units}


def additions(text: str, known: Iterable[int]) -> list[Addition]:
    """The sentences of `text` with facts not in `known` (hashes: `facts_of`), at most
    SHOWN, in text order, each with the names and figures that made it new."""
    seen = set(known)
    if not seen:
        return []  # nothing earlier: a story's first report adds everything, said nowhere
    body = _DATELINE.sub("", text, count=1)
    found: list[Addition] = []
    for sentence in sentences(body):
        if _BOILERPLATE.search(sentence):
            continue
        figures = [f for f in dict.fromkeys(_figures(sentence)) if _hash("f:" + f) not in seen]
        names = [
            name
            for name in dict.fromkeys(_names(sentence))
            if any(_hash("w:" + _stem(w)) not in seen for w in words(name) if len(w) > 2)
        ]
        content = _content(sentence)
        new_words = [w for w in content if _hash("w:" + w) not in seen]
        claim = len(new_words) >= CLAIM_WORDS and len(new_words) >= CLAIM_SHARE * len(content)
        if figures or names or claim:
            found.append(Addition(sentence=sentence, names=tuple(names), figures=tuple(figures)))
            if len(found) == SHOWN:
                break
    return found


class StoryFacts:
    """The facts each story has carried so far, in Redis (`facts:<story>`: 4-byte hashes,
    appended), kept `retention` seconds after the story's last report."""

    def __init__(self, client: redis.Redis, keys: Keys, *, retention: float) -> None:
        self.client = client
        self.keys = keys
        self.retention = retention

    def measure(self, story_id: str, title: str, text: str) -> list[Addition]:
        """What the report adds to the story's earlier reports; then its facts join them.
        Two round trips: a read, then an append of only the facts new to the story."""
        key = self.keys.story_facts(story_id)
        raw = self.client.execute_command("GET", key, **{NEVER_DECODE: True})
        known = np.frombuffer(raw or b"", dtype="<u4")
        mine = facts_of(title, text)
        found = additions(text, known.tolist()) if len(known) else []
        new = np.setdiff1d(np.fromiter(mine, dtype="<u4", count=len(mine)), known)
        pipe = self.client.pipeline(transaction=False)
        if len(new):
            pipe.append(key, new.astype("<u4").tobytes())
        pipe.expire(key, int(self.retention))
        pipe.execute()
        return found
