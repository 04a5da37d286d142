"""The presearcher: which rules can possibly match a document, found without evaluating them.

Each rule's query is reduced to a set of *keys* — words, or word prefixes for wildcards —
such that a document containing none of them cannot match: a term gives one of its words
(the longest, the likeliest to be rare), OR the union of its branches', AND and NEAR the
smallest set among their branches'. NOT, `lang:` and `source:` give no key, and a rule whose
query reduces to nothing (e.g. `NOT x`) is evaluated for every document. The keys of all
rules go into one dictionary from key to rules, so finding the candidates costs one lookup
per distinct word of the document (plus its prefixes, for wildcard keys), whatever the
number of rules — the idea of Lucene Monitor's presearcher, with a hash table for the
automaton since matching is on whole tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Generic, Protocol, TypeVar

from monitor.rules.query import Alias, And, Field, Near, Node, Not, Or, Term


class Queried(Protocol):
    """What the presearcher needs of a rule: its parsed query (plain data, so this module
    does not depend on the rule loader)."""

    @property
    def node(self) -> Node: ...


Rule = TypeVar("Rule", bound=Queried)

Key = tuple[str, bool]  # (word, is a prefix)


def _term_key(term: Term) -> Key:
    last = len(term.words) - 1
    candidates = [(w, term.prefix and i == last) for i, w in enumerate(term.words)]
    # a whole word over a prefix, then the longest: the most selective key
    return max(candidates, key=lambda k: (not k[1], len(k[0])))


def keys(node: Node) -> frozenset[Key] | None:
    """Keys one of which every matching document contains; None when there are none."""
    match node:
        case Term():
            return frozenset([_term_key(node)])
        case Alias():
            return frozenset(_term_key(t) for t in node.terms)
        case Field():
            return None if node.name in ("lang", "source") else keys(node.node)
        case Not():
            return None
        case Or():
            parts = [keys(child) for child in node.nodes]
            if any(p is None for p in parts):
                return None
            return frozenset().union(*parts)  # type: ignore[arg-type]
        case And():
            return _smallest(keys(child) for child in node.nodes)
        case Near():
            return _smallest((keys(node.left), keys(node.right)))
    raise TypeError(f"not a query node: {node!r}")


def _smallest(parts: Iterable[frozenset[Key] | None]) -> frozenset[Key] | None:
    known = [p for p in parts if p is not None]
    if not known:
        return None
    return min(known, key=lambda p: (len(p), -min(len(w) for w, _ in p)))


class Prefilter(Generic[Rule]):
    def __init__(self, rules: Sequence[Rule]) -> None:
        self.words: dict[str, list[int]] = {}
        self.prefixes: dict[str, list[int]] = {}
        self.always: list[int] = []
        self.rules = list(rules)
        for n, rule in enumerate(self.rules):
            found = keys(rule.node)
            if found is None:
                self.always.append(n)
                continue
            for word, prefix in found:
                (self.prefixes if prefix else self.words).setdefault(word, []).append(n)
        # Prefixes by length: a word w has prefix p exactly when w[:len(p)] == p, so one set
        # intersection per distinct prefix length finds them all.
        self.by_length: dict[int, set[str]] = {}
        for start in self.prefixes:
            self.by_length.setdefault(len(start), set()).add(start)

    def candidates(self, vocabulary: Iterable[str]) -> list[Rule]:
        """The rules that may match a document with these (folded) words, in rule order."""
        vocab = vocabulary if isinstance(vocabulary, (set, frozenset)) else set(vocabulary)
        hits = set(self.always)
        words, prefixes = self.words, self.prefixes
        for word in words.keys() & vocab:
            hits.update(words[word])
        for length, known in self.by_length.items():
            for prefix in known.intersection({w[:length] for w in vocab if len(w) >= length}):
                hits.update(prefixes[prefix])
        return [self.rules[n] for n in sorted(hits)]
