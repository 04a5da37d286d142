"""A query over everything retained, through the search index (monitor/retained/index.py).

The query's tree is read twice. First over postings, without reading a text: for each node
the documents it may match, those where it may carry a hit (a match is scored by its hits,
so a rule's matches are the latter), and those of them the postings cannot decide. Words,
wildcards, fields, AND, OR and NOT are decided; a phrase's documents are those holding its
words, NEAR's those holding both sides, and a term made only of words too common to be
indexed may be in any document: those are undecided. Then, newest first, the candidates are
read and matched like live items: the undecided ones (up to `verify` of them) to know
whether they match, the others only when shown (for their explanations). The result is
the full scan's, without reading what cannot match.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from monitor.model import Outcome, RuleMatch
from monitor.retained.index import (
    FIELD_LETTERS,
    OUTCOMES,
    SKIPPED,
    Bounds,
    SearchIndex,
    entry_id,
)
from monitor.retained.items import Retained, RetainedItems, retained_entry
from monitor.rules import Document, Rule
from monitor.rules.match import SEARCHED
from monitor.rules.query import Alias, And, Field, Near, Node, Not, Or, Term

BATCH = 200  # retained items read at once
VERIFY = 500  # undecided candidates read in full at most

Docs = np.ndarray  # sorted, unique document numbers


@dataclass(frozen=True, slots=True)
class Found:
    """What the postings say of a node: the documents it may match and those where it may
    carry a hit (None: any document), and those of them it is not known to match or hit
    (None: all of `matches`); for any other document the first two are exact."""

    matches: Docs | None
    hits: Docs | None
    unsure: Docs | None


NOTHING = np.empty(0, np.int64)


def _intersect(sets: Sequence[Docs | None]) -> Docs | None:
    known = sorted((s for s in sets if s is not None), key=len)
    if not known:
        return None
    out = known[0]
    for s in known[1:]:
        out = np.intersect1d(out, s, assume_unique=True)
    return out


def _union(sets: Sequence[Docs | None]) -> Docs | None:
    known = [s for s in sets if s is not None]
    return None if len(known) < len(sets) else _merge(known)


def _merge(sets: Sequence[Docs]) -> Docs:
    if len(sets) < 2:
        return sets[0] if sets else NOTHING
    return np.unique(np.concatenate(sets))


def _unsure(found: Found) -> Docs | None:
    return found.matches if found.unsure is None else found.unsure


class Planner:
    """Reads a query's tree over the postings of the documents in `bounds`."""

    def __init__(self, index: SearchIndex, bounds: Bounds) -> None:
        self.index = index
        self.bounds = bounds
        self.everything = np.arange(bounds.first, bounds.last + 1, dtype=np.int64)
        self.tokens: dict[str, Docs] = {}
        self.expanded: dict[tuple[str, str], list[str]] = {}

    def fetch(self, node: Node) -> None:
        """Read at once the postings the node will ask for (one round trip, wildcards aside)."""
        wanted = sorted(set(self._tokens(node, SEARCHED)) - self.tokens.keys())
        self.tokens.update(self.index.postings(wanted, self.bounds))

    def _tokens(self, node: Node, scope: tuple[str, ...]) -> Iterator[str]:
        match node:
            case Term():
                for name in scope:
                    yield from self._term_tokens(node, name)
            case Alias():
                for t in node.terms:
                    for name in scope:
                        yield from self._term_tokens(t, name)
            case Field():
                yield from self._tokens(node.node, (node.name,))
            case Not():
                yield from self._tokens(node.node, scope)
            case And() | Or():
                for child in node.nodes:
                    yield from self._tokens(child, scope)
            case Near():
                yield from self._tokens(node.left, scope)
                yield from self._tokens(node.right, scope)

    def _term_tokens(self, term: Term, name: str) -> Iterator[str]:
        letter = FIELD_LETTERS[name]
        if name == "lang":
            if term.prefix:
                yield from (letter + w for w in self._expand(letter, term.words[0]))
            else:
                yield letter + " ".join(term.words)
            return
        last = len(term.words) - 1
        for k, word in enumerate(term.words):
            if term.prefix and k == last:
                yield from (letter + w for w in self._expand(letter, word))
            elif word not in SKIPPED:
                yield letter + word

    def _expand(self, letter: str, start: str) -> list[str]:
        """The indexed words of a field beginning with `start` (none when a word too common
        to be indexed does too: then the term cannot be narrowed)."""
        if letter != FIELD_LETTERS["lang"] and any(w.startswith(start) for w in SKIPPED):
            return []
        key = (letter, start)
        if key not in self.expanded:
            self.expanded[key] = sorted(self.index.words(letter, start, self.bounds))
        return self.expanded[key]

    def _posted(self, token: str) -> Docs:
        """The documents holding the token."""
        if token not in self.tokens:
            self.tokens.update(self.index.postings([token], self.bounds))
        return self.tokens[token]

    def plan(self, node: Node, scope: tuple[str, ...] = SEARCHED) -> Found:
        match node:
            case Term():
                return self._term(node, scope)
            case Alias():
                return self._or([self._term(t, scope) for t in node.terms])
            case Field():
                return self.plan(node.node, (node.name,))
            case Not():
                inner = self.plan(node.node, scope)
                unsure = _unsure(inner)
                if inner.matches is None or unsure is None:
                    return Found(unsure, NOTHING, unsure)
                rest = np.setdiff1d(self.everything, inner.matches, assume_unique=True)
                return Found(_union([rest, unsure]), NOTHING, unsure)
            case And():
                parts = [self.plan(child, scope) for child in node.nodes]
                matches = _intersect([p.matches for p in parts])
                hits = _union([p.hits for p in parts])
                both = _intersect([matches, hits])
                unsure = _intersect([_union([_unsure(p) for p in parts]), matches])
                return Found(matches, both, unsure)
            case Or():
                return self._or([self.plan(child, scope) for child in node.nodes])
            case Near():
                left, right = self.plan(node.left, scope), self.plan(node.right, scope)
                near = _intersect([left.hits, right.hits])
                return Found(near, near, None)
        raise TypeError(f"not a query node: {node!r}")

    @staticmethod
    def _or(parts: list[Found]) -> Found:
        return Found(
            _union([p.matches for p in parts]),
            _union([p.hits for p in parts]),
            _union([_unsure(p) for p in parts]),
        )

    def _term(self, term: Term, scope: tuple[str, ...]) -> Found:
        docs: list[Docs | None] = []
        unsure: list[Docs | None] = []
        for name in scope:
            letter = FIELD_LETTERS[name]
            if name == "lang":
                if term.prefix:
                    found = self._expand(letter, term.words[0])
                    docs.append(_merge([self._posted(letter + w) for w in found]))
                else:
                    docs.append(self._posted(letter + " ".join(term.words)))
                unsure.append(NOTHING)
                continue
            sets: list[Docs | None] = []
            last = len(term.words) - 1
            sure = last == 0  # a phrase's words are all there, maybe not in a row
            for k, word in enumerate(term.words):
                if term.prefix and k == last:
                    if any(w.startswith(word) for w in SKIPPED):
                        sets.append(None)
                        sure = False
                    else:
                        found = self._expand(letter, word)
                        sets.append(_merge([self._posted(letter + w) for w in found]))
                elif word in SKIPPED:
                    sets.append(None)
                    sure = False
                else:
                    sets.append(self._posted(letter + word))
            field_docs = _intersect(sets)
            docs.append(field_docs)
            unsure.append(NOTHING if sure else field_docs)
        matches = _union(docs)
        return Found(matches, matches, None if matches is None else _union(unsure))


@dataclass(slots=True)
class Searched:
    """A query's matches among retained items, newest first."""

    matches: list[tuple[Retained, RuleMatch]] = field(default_factory=list)  # the first shown
    count: int = 0  # the matches counted (all of them when `complete`)
    complete: bool = True  # False: `unchecked` candidates were not read (count is a floor)
    unchecked: int = 0
    searched: int = 0  # retained items searched (within the time bounds)
    candidates: int = 0  # those the postings could not rule out
    read: int = 0  # retained items read in full
    stories: dict[str, list[Outcome]] = field(default_factory=dict)  # outcomes of matches
    unindexed: bool = False  # the stream holds items from before the index: not searched


def search(
    rule: Rule,
    retained: RetainedItems,
    *,
    since: float | None = None,
    until: float | None = None,
    story: str = "",
    shown: int = 50,
    verify: int = VERIFY,
    per_story: bool = True,
) -> Searched:
    """The retained items `rule` matches, processed between `since` and `until` (Unix
    seconds), of `story` if given: the newest `shown` with their explanations, and how many
    there are (with `per_story`, the outcome of each in its story)."""
    index = retained.index
    bounds = _within(index, index.bounds(), since, until)
    found = Searched(unindexed=bounds.unindexed)
    if bounds.first > bounds.last or not rule.enabled:
        return found
    found.searched = bounds.last - bounds.first + 1
    planner = Planner(index, bounds)
    planner.fetch(rule.node)
    planned = planner.plan(rule.node)
    docs = planned.hits if rule.min_score >= 1 else planned.matches
    docs = planner.everything if docs is None else docs
    unsure = docs if planned.unsure is None else planned.unsure
    if rule.min_score > 1 or rule.languages or rule.sources_include or rule.sources_exclude:
        unsure = docs  # scores and filters are known only from the text
    records = index.records(docs)
    doubt = np.isin(docs, unsure, assume_unique=True)  # type: ignore[arg-type]
    keep = records["ms"] > 0  # a record not written yet (or lost): not searchable
    if story:
        keep &= records["story"] == story.encode()
    records, doubt = records[keep][::-1], doubt[keep][::-1]  # newest first
    found.candidates = len(records)
    matched = _check(rule, retained, records, doubt, shown=shown, verify=verify, found=found)
    found.count = int(matched.sum())
    if per_story:
        for story_id, outcome in zip(
            records["story"][matched], records["outcome"][matched], strict=True
        ):
            found.stories.setdefault(story_id.decode(), []).append(OUTCOMES[outcome])
    return found


def _check(
    rule: Rule,
    retained: RetainedItems,
    records: np.ndarray,
    doubt: np.ndarray,
    *,
    shown: int,
    verify: int,
    found: Searched,
) -> np.ndarray:
    """Read, newest first, the records the postings could not decide (`doubt`; `verify` of
    them at most) and those shown; the newest `shown` matches go into `found` with their
    explanations. Which records match (the undecided ones not read: not counted)."""
    matched = ~doubt
    doubtful = np.flatnonzero(doubt)
    if len(doubtful) > verify:  # those past the budget stay unknown, and nothing is shown
        found.complete = False  # beyond the first of them
        found.unchecked = len(doubtful) - verify
        end = int(doubtful[verify])
    else:
        end = len(records)
    at = 0
    while at < end and (len(found.matches) < shown or doubt[at:end].any()):
        wanted: list[int] = []
        showing = len(found.matches)
        while at < end and len(wanted) < BATCH:
            if doubt[at] or showing < shown:
                wanted.append(at)
                showing += 1
            at += 1
        entries = retained.entries([entry_id(r) for r in records[wanted]])
        for n, pair in zip(wanted, entries, strict=True):
            if pair is None:  # trimmed since the record was read
                matched[n] = False if doubt[n] else matched[n]
                continue
            found.read += 1
            kept = retained_entry(*pair)
            match = rule.match(document_of(kept))
            matched[n] = match is not None
            if match is not None and len(found.matches) < shown:
                found.matches.append((kept, match))
    return matched


def _within(index: SearchIndex, bounds: Bounds, since: float | None, until: float | None) -> Bounds:
    """The documents of `bounds` processed between `since` and `until` (the stream's ids
    are processing times)."""
    first, last = bounds.first, bounds.last
    if since is not None:
        doc = index.doc_at(str(int(since * 1000)), after=True)
        if doc is None:
            first = last + 1  # nothing retained since
        elif doc:
            first = max(first, doc)
    if until is not None:
        doc = index.doc_at(str(int(until * 1000)), after=False)
        last = min(last, doc) if doc else first - 1
    return Bounds(first, last, bounds.unindexed)


def document_of(kept: Retained) -> Document:
    """A retained item as rules see it (the same fields as live processing)."""
    return Document(
        title=kept.item.title or kept.article.title,
        text=kept.article.text,
        source=kept.item.source,
        lang=kept.article.language,
        url=kept.url,
    )


def scan(
    rule: Rule,
    retained: RetainedItems,
    *,
    since: float | None = None,
    until: float | None = None,
    story: str = "",
) -> list[tuple[Retained, RuleMatch]]:
    """Every retained item `rule` matches, newest first, by reading them all: the reference
    `search` agrees with (tests, benchmarks)."""
    found = []
    for entry, fields in retained.newest_entries(since or 0):
        kept = retained_entry(entry, fields)
        if until is not None and kept.processed_at > until:
            continue
        if story and kept.placement.story_id != story:
            continue
        match = rule.match(document_of(kept))
        if match is not None:
            found.append((kept, match))
    return found
