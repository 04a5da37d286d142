"""Evaluating a parsed query against a document, with the reasons it matched."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from monitor.model import Hit
from monitor.rules.query import Alias, And, Field, Near, Node, Not, Or, Term
from monitor.text import Token, fold, token_columns

SEARCHED = ("title", "text")  # what an unscoped term looks in
SNIPPET_CONTEXT = 60  # characters each side of a hit


@dataclass(slots=True)
class _FieldIndex:
    text: str
    starts: list[int]  # char offset of each token
    ends: list[int]
    positions: dict[str, list[int]]
    vocabulary: list[str]  # sorted, for prefix lookups

    @classmethod
    def build(cls, text: str, toks: list[Token] | None = None) -> _FieldIndex:
        if toks is None:
            norms, starts, ends = token_columns(text)
        elif toks:
            norms, starts, ends = map(list, zip(*toks, strict=True))  # columns, in C
        else:
            norms, starts, ends = [], [], []
        positions: dict[str, list[int]] = {}
        for i, norm in enumerate(norms):
            positions.setdefault(norm, []).append(i)
        return cls(text, starts, ends, positions, sorted(positions))

    def word_positions(self, word: str, prefix: bool) -> list[int]:
        if not prefix:
            return self.positions.get(word, [])
        found: list[int] = []
        i = bisect.bisect_left(self.vocabulary, word)
        while i < len(self.vocabulary) and self.vocabulary[i].startswith(word):
            found.extend(self.positions[self.vocabulary[i]])
            i += 1
        return sorted(found)


@dataclass(frozen=True, slots=True)
class Span:
    """Where a term hit: field, first and last token position, and the term's label."""

    field: str
    first: int
    last: int
    label: str


@dataclass(slots=True)
class Document:
    """The searchable fields of one article. Indexes are built once per field, on demand."""

    title: str = ""
    text: str = ""
    source: str = ""
    lang: str = ""
    url: str = ""  # not searched: for the rules' `sources` option
    tokens: dict[str, list[Token]] = field(default_factory=dict)  # of fields tokenised already
    _indexes: dict[str, _FieldIndex] = field(default_factory=dict)

    def index(self, name: str) -> _FieldIndex:
        found = self._indexes.get(name)
        if found is None:
            built = _FieldIndex.build(getattr(self, name), self.tokens.get(name))
            found = self._indexes[name] = built
        return found

    def vocabulary(self) -> set[str]:
        """The distinct words of the searchable text fields."""
        return set(self.index("title").positions).union(self.index("text").positions)

    def snippet(self, span: Span) -> str:
        idx = self.index(span.field)
        start, end = idx.starts[span.first], idx.ends[span.last]
        left = max(0, start - SNIPPET_CONTEXT)
        right = min(len(idx.text), end + SNIPPET_CONTEXT)
        before = idx.text[left:start]
        after = idx.text[end:right]
        if left > 0:  # cut at a word boundary
            before = "…" + before.split(" ", 1)[-1]
        if right < len(idx.text):
            after = after.rsplit(" ", 1)[0] + "…"
        return " ".join(f"{before}«{idx.text[start:end]}»{after}".split())


def _term_spans(term: Term, doc: Document, scope: tuple[str, ...], label: str) -> list[Span]:
    spans = []
    last = len(term.words) - 1
    for name in scope:
        if name == "lang":
            if fold(doc.lang) == " ".join(term.words) or (
                term.prefix and fold(doc.lang).startswith(term.words[0])
            ):
                spans.append(Span("lang", -1, -1, label))
            continue
        idx = doc.index(name)
        starts = idx.word_positions(term.words[0], term.prefix and last == 0)
        if not starts:
            continue
        following = [
            set(idx.word_positions(w, term.prefix and k == last))
            for k, w in enumerate(term.words[1:], 1)
        ]
        for start in starts:
            if all(start + k in found for k, found in enumerate(following, 1)):
                spans.append(Span(name, start, start + last, label))
    return spans


def evaluate(node: Node, doc: Document, scope: tuple[str, ...] = SEARCHED) -> list[Span] | None:
    """None when the node does not match; else the spans of the terms that made it match
    (empty for a match made only of NOTs)."""
    match node:
        case Term():
            return _term_spans(node, doc, scope, node.label or str(node)) or None
        case Alias():
            spans = []
            for t in node.terms:
                spans += _term_spans(t, doc, scope, f"@{node.name}: {t.label or t}")
            return spans or None
        case Field():
            return evaluate(node.node, doc, (node.name,))
        case Not():
            return [] if evaluate(node.node, doc, scope) is None else None
        case And():
            spans = []
            for child in node.nodes:
                found = evaluate(child, doc, scope)
                if found is None:
                    return None
                spans += found
            return spans
        case Or():
            matched = [evaluate(child, doc, scope) for child in node.nodes]
            hits = [s for found in matched if found is not None for s in found]
            return hits if any(found is not None for found in matched) else None
        case Near():
            left = evaluate(node.left, doc, scope) or []
            right = evaluate(node.right, doc, scope) or []
            return _near(left, right, node.distance) or None
    raise TypeError(f"not a query node: {node!r}")


def _near(left: list[Span], right: list[Span], distance: int) -> list[Span]:
    """The spans of `left` and `right` that have a partner on the other side at most
    `distance` words away in the same field (never the same span). Each left span looks
    only at the window of right spans that can be close, so hits x hits is never built."""
    found: dict[Span, None] = {}
    by_field: dict[str, list[Span]] = {}
    for span in right:
        if span.field != "lang":
            by_field.setdefault(span.field, []).append(span)
    for spans in by_field.values():
        spans.sort(key=lambda s: s.first)
    longest = {f: max(s.last - s.first for s in spans) for f, spans in by_field.items()}
    for a in left:
        candidates = by_field.get(a.field)
        if not candidates:
            continue
        lowest = a.first - distance - 1 - longest[a.field]
        start = bisect.bisect_left(candidates, lowest, key=lambda s: s.first)
        for b in candidates[start:]:
            if b.first > a.last + distance + 1:
                break
            if b != a and _gap(a, b) <= distance:
                found[a] = None
                found[b] = None
    return list(found)


def _gap(a: Span, b: Span) -> int:
    """Words strictly between two spans (0 when adjacent or overlapping)."""
    if a.first > b.first:
        a, b = b, a
    return max(0, b.first - a.last - 1)


def explain(spans: list[Span], doc: Document) -> tuple[Hit, ...]:
    """One Hit per distinct (field, term), with the snippet of its first occurrence; in the
    order the terms stand in the query, a title hit before a text hit of the same term."""
    order = {label: n for n, label in enumerate(dict.fromkeys(s.label for s in spans))}
    first: dict[tuple[str, str], Span] = {}
    for span in sorted(spans, key=lambda s: (order[s.label], s.field != "title", s.first)):
        first.setdefault((span.field, span.label), span)
    return tuple(
        Hit(
            field=span.field,
            term=span.label,
            snippet=doc.lang if span.field == "lang" else doc.snippet(span),
        )
        for span in first.values()
    )


def score(hits: tuple[Hit, ...]) -> int:
    """Distinct query terms that hit (an alias is one term, whichever of its members hit);
    a term counts 2 if it hit in the title, else 1."""
    best: dict[str, int] = {}
    for hit in hits:
        term = hit.term.split(":", 1)[0] if hit.term.startswith("@") else hit.term
        best[term] = max(best.get(term, 0), 2 if hit.field == "title" else 1)
    return sum(best.values())
