"""A query over everything retained, through the search index (monitor/retained/index.py).

The query's tree is read twice. First over postings, without reading a text: for each node
the documents it may match and those where it may carry a hit (a match is scored by its
hits, so a rule's matches are the latter) — exact for words, wildcards, fields, AND, OR and
NOT; a superset for phrases and NEAR (their words all present), and all documents for a
term made only of words too common to be indexed. Then, newest first, the candidates are
read and matched like live items: all of them when the postings were a superset, only
those shown otherwise (for their explanations). The result is the full scan's, without
reading what cannot match.
"""

from __future__ import annotations

from collections.abc import Iterator
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
VERIFY = 500  # candidates read in full at most, when the postings cannot decide alone

Docs = np.ndarray  # sorted, unique document numbers


@dataclass(frozen=True, slots=True)
class Found:
    """What the postings say of a node: the documents it may match and those where it may
    carry a hit (None: any document), and whether that is exact."""

    matches: Docs | None
    hits: Docs | None
    exact: bool


def _intersect(sets: list[Docs | None]) -> Docs | None:
    known = sorted((s for s in sets if s is not None), key=len)
    if not known:
        return None
    out = known[0]
    for s in known[1:]:
        out = np.intersect1d(out, s, assume_unique=True)
    return out


def _union(sets: list[Docs | None]) -> Docs | None:
    if any(s is None for s in sets):
        return None
    return np.unique(np.concatenate(sets)) if sets else np.empty(0, np.int64)  # type: ignore[arg-type]


class Planner:
    """Reads a query's tree over the postings of the documents in `bounds`."""

    def __init__(self, index: SearchIndex, bounds: Bounds) -> None:
        self.index = index
        self.bounds = bounds
        self.everything = np.arange(bounds.first, bounds.last + 1, dtype=np.int64)
        self.tokens: dict[str, Docs] = {}
        self.expanded: dict[tuple[str, str], set[str]] = {}

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
            if not term.prefix:
                yield letter + " ".join(term.words)
            return
        last = len(term.words) - 1
        for k, word in enumerate(term.words):
            if term.prefix and k == last:
                yield from (letter + w for w in self._expand(letter, word))
            elif word not in SKIPPED:
                yield letter + word

    def _expand(self, letter: str, start: str) -> set[str]:
        """The indexed words beginning with `start` (empty when a skipped word does too:
        then the term cannot be narrowed)."""
        if any(w.startswith(start) for w in SKIPPED):
            return set()
        key = (letter, start)
        if key not in self.expanded:
            self.expanded[key] = self.index.words(letter, start, self.bounds)
        return self.expanded[key]

    def _posted(self, token: str) -> Docs:
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
                if inner.exact:
                    assert inner.matches is not None
                    rest = np.setdiff1d(self.everything, inner.matches, assume_unique=True)
                    return Found(rest, np.empty(0, np.int64), True)
                return Found(None, np.empty(0, np.int64), False)
            case And():
                parts = [self.plan(child, scope) for child in node.nodes]
                matches = _intersect([p.matches for p in parts])
                hits = _union([p.hits for p in parts])
                both = _intersect([matches, hits])
                return Found(matches, both, all(p.exact for p in parts))
            case Or():
                return self._or([self.plan(child, scope) for child in node.nodes])
            case Near():
                left, right = self.plan(node.left, scope), self.plan(node.right, scope)
                near = _intersect([left.hits, right.hits])
                return Found(near, near, False)
        raise TypeError(f"not a query node: {node!r}")

    @staticmethod
    def _or(parts: list[Found]) -> Found:
        return Found(
            _union([p.matches for p in parts]),
            _union([p.hits for p in parts]),
            all(p.exact for p in parts),
        )

    def _term(self, term: Term, scope: tuple[str, ...]) -> Found:
        per_field: list[Docs | None] = []
        exact = True
        for name in scope:
            letter = FIELD_LETTERS[name]
            if name == "lang":
                if term.prefix:
                    per_field.append(None)
                    exact = False
                else:
                    per_field.append(self._posted(letter + " ".join(term.words)))
                continue
            sets: list[Docs | None] = []
            last = len(term.words) - 1
            exact = exact and last == 0
            for k, word in enumerate(term.words):
                if term.prefix and k == last:
                    found = self._expand(letter, word)
                    if not found:
                        unnarrowed = any(w.startswith(word) for w in SKIPPED)
                        sets.append(None if unnarrowed else np.empty(0, np.int64))
                        exact = exact and not unnarrowed
                        continue
                    sets.append(_union([self._posted(letter + w) for w in sorted(found)]))
                elif word in SKIPPED:
                    sets.append(None)
                    exact = False
                else:
                    sets.append(self._posted(letter + word))
            per_field.append(_intersect(sets))
        docs = _union(per_field)
        return Found(docs, docs, exact and docs is not None)


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
    filtered = rule.languages or rule.sources_include or rule.sources_exclude
    exact = planned.exact and rule.min_score <= 1 and not filtered
    records = index.records(planner.everything if docs is None else docs)
    keep = records["ms"] > 0  # a record not written yet (or lost): not searchable
    if story:
        keep &= records["story"] == story.encode()
    records = records[keep][::-1]  # newest first
    found.candidates = len(records)
    if exact:  # the postings decided: read only what is shown
        found.count = len(records)
        if per_story:
            for story_id, outcome in zip(records["story"], records["outcome"], strict=True):
                found.stories.setdefault(story_id.decode(), []).append(OUTCOMES[outcome])
        found.matches.extend(_read(rule, retained, records[:shown], found))
        return found
    for kept, match in _read(rule, retained, records[:verify], found):
        if len(found.matches) < shown:
            found.matches.append((kept, match))
        found.count += 1
        found.stories.setdefault(kept.placement.story_id, []).append(kept.placement.outcome)
    if len(records) > verify:
        found.complete = False
        found.unchecked = len(records) - verify
    return found


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


def _read(
    rule: Rule,
    retained: RetainedItems,
    records: np.ndarray,
    found: Searched,
) -> Iterator[tuple[Retained, RuleMatch]]:
    """The items of these records that `rule` matches, read BATCH at a time, in order."""
    for start in range(0, len(records), BATCH):
        batch = records[start : start + BATCH]
        entries = retained.entries([entry_id(r) for r in batch])
        for pair in entries:
            if pair is None:
                continue  # trimmed since the record was read
            found.read += 1
            kept = retained_entry(*pair)
            match = rule.match(document_of(kept))
            if match is not None:
                yield kept, match


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
