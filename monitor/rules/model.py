"""A rule and a rule set: what a loaded rule is and how it matches a document (the
prefilter picks the candidate rules; each candidate's query is evaluated and explained)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from monitor.errors import RuleError
from monitor.model import RuleMatch
from monitor.rules.match import Document, evaluate, explain, score
from monitor.rules.prefilter import Prefilter
from monitor.rules.query import And, Node, Term
from monitor.text import words

SEVERITIES = ("low", "medium", "high", "critical")
UPDATES = ("always", "when-new")  # which updates a rule raises


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    id: str
    name: str
    query: str
    node: Node
    severity: str = "medium"
    languages: tuple[str, ...] = ()
    min_score: int = 1
    enabled: bool = True
    examples_match: tuple[str, ...] = ()
    examples_no_match: tuple[str, ...] = ()
    sources_include: tuple[str, ...] = ()  # source names or domains; empty: any source
    sources_exclude: tuple[str, ...] = ()
    backfill: float | None = None  # seconds: the daemon runs a new version over that past
    tags: tuple[str, ...] = ()  # free labels for routing alerts to sinks ("asia", "desk-x")
    breaking: bool = False  # also raise `breaking` when a matching story breaks
    updates: str = "always"  # "when-new": an update only for a report that adds something
    path: str = ""
    warnings: tuple[RuleError, ...] = field(
        default=(), compare=False
    )  # lint: parses, but likely not what was meant

    @property
    def clauses(self) -> tuple[Node, ...]:
        """The parts of the query that must all hold: an AND's branches, or the query."""
        return self.node.nodes if isinstance(self.node, And) else (self.node,)

    def match(self, doc: Document) -> RuleMatch | None:
        if not self.enabled:
            return None
        if self.languages and doc.lang and doc.lang not in self.languages:
            return None  # an item of unknown language is not excluded
        if self.sources_include and not _from_any(doc, self.sources_include):
            return None
        if self.sources_exclude and _from_any(doc, self.sources_exclude):
            return None
        spans = evaluate(self.node, doc)
        if spans is None:
            return None
        hits = explain(spans, doc)
        total = score(hits)
        if total < self.min_score:
            return None
        return RuleMatch(rule_id=self.id, score=total, hits=hits)


def _from_any(doc: Document, sources: tuple[str, ...]) -> bool:
    """Whether the document's source name or URL host is one of `sources` (names are
    compared case-insensitively, domains also match their subdomains)."""
    name = " ".join(words(doc.source))
    host = (urlsplit(doc.url).hostname or "").lower()
    for source in sources:
        if source == name or (host and (host == source or host.endswith("." + source))):
            return True
    return False


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]
    aliases: dict[str, tuple[Term, ...]]
    prefilter: Prefilter[Rule] = field(init=False, repr=False, compare=False)
    by_id: dict[str, Rule] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefilter", Prefilter(self.rules))
        # The first of a repeated id, as a search in order would find.
        object.__setattr__(self, "by_id", {})
        for rule in self.rules:
            self.by_id.setdefault(rule.id, rule)

    def match(self, doc: Document) -> list[RuleMatch]:
        """Every rule that matches, evaluating only the prefilter's candidates."""
        candidates = self.prefilter.candidates(doc.vocabulary())
        return [m for rule in candidates if (m := rule.match(doc)) is not None]

    def match_all(self, doc: Document) -> list[RuleMatch]:
        """The same, evaluating every rule (the reference the prefilter must agree with)."""
        return [m for rule in self.rules if (m := rule.match(doc)) is not None]

    def get(self, rule_id: str) -> Rule | None:
        return self.by_id.get(rule_id)
