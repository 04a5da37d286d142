"""Running a rule over retained items (`monitor rules backfill`, and automatically for a new
rule with a `backfill` window): the alerts it would have raised live, one per story, raised
now — through the same claims as live processing, so the same alert ids, nothing twice.
And trying one (`scan`, the desk's rule tester and search): what it matches among all
retained items (through the search index), and which stories it would alert for, without
publishing."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from monitor.dedup.wires import credited
from monitor.model import AlertKind, Hit, Matched, RuleMatch, alert_id
from monitor.pipeline.search import document_of, search
from monitor.retained.items import Retained, RetainedItems
from monitor.rules import Document, Rule
from monitor.rules.match import evaluate, explain

if TYPE_CHECKING:  # a scan builds no pipeline: the desk imports this without the extractor
    from monitor.pipeline.process import Pipeline

SHOWN = 50  # matches a scan keeps (with their clauses explained); all are counted


@dataclass(slots=True)
class StoryHits:
    story_id: str
    matches: list[tuple[Retained, RuleMatch]] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    already_alerted: bool = False


@dataclass(slots=True)
class Report:
    rule: str
    items: int = 0
    matched: int = 0
    stories: dict[str, StoryHits] = field(default_factory=dict)

    @property
    def alerts(self) -> int:
        return sum(len(s.alerts) for s in self.stories.values())


def run(
    rule: Rule,
    retained: RetainedItems,
    pipeline: Pipeline,
    *,
    since: float,
    dry_run: bool,
    progress: Callable[[], None] | None = None,
) -> Report:
    """Match `rule` on every item retained since `since`; unless `dry_run`, publish the
    alerts of each story's first matching originals, marked as backfilled."""
    report = Report(rule.id)
    for kept in retained.read(since):
        report.items += 1
        if progress:
            progress()
        match = rule.match(document_of(kept))
        if match is None:
            continue
        report.matched += 1
        story = report.stories.get(kept.placement.story_id)
        if story is None:
            story = report.stories[kept.placement.story_id] = StoryHits(kept.placement.story_id)
            new_id = alert_id(rule.id, story.story_id, AlertKind.NEW)
            story.already_alerted = pipeline.queue.is_published(new_id)
        story.matches.append((kept, match))
        if dry_run or not kept.placement.outcome.is_original:
            continue  # copies never alert, live or backfilled
        found = Matched(
            item=kept.item,
            article=kept.article,
            url=kept.url,
            placement=kept.placement,
            matches=[match],
            wires=credited(kept.article.text),
        )
        # Claimed as of when the item was processed, like live.
        alerted = pipeline.alert(found, backfill=True, at=kept.processed_at)
        story.alerts.extend(a for a, _ in alerted.published)
    return report


class Verdict(enum.StrEnum):
    """What a rule's matches in one story would do live."""

    WOULD_ALERT = "would raise new"  # an original matches and no `new` alert was published
    ALERTED = "alerted already"
    COPY = "a copy: no alert"  # only copies match: copies never alert


class Clause(NamedTuple):
    """One clause of a rule's query on one item: its text, whether it holds, its hits."""

    text: str
    holds: bool
    hits: tuple[Hit, ...]


@dataclass(frozen=True, slots=True)
class ScanMatch:
    """A retained item a scanned rule matches, with its clauses explained."""

    kept: Retained
    match: RuleMatch
    clauses: list[Clause]


@dataclass(slots=True)
class Scan:
    """What a rule matches among the retained items."""

    matches: list[ScanMatch] = field(default_factory=list)  # the first SHOWN, newest first
    count: int = 0  # all the matches (at least, when not `complete`)
    scanned: int = 0  # retained items searched
    stories: dict[str, Verdict] = field(default_factory=dict)
    complete: bool = True  # False: `unchecked` candidates were not read
    unchecked: int = 0
    unindexed: bool = False  # items retained before the search index: not searched

    @property
    def would_alert(self) -> int:
        return sum(v is Verdict.WOULD_ALERT for v in self.stories.values())


def scan(
    rule: Rule,
    retained: RetainedItems,
    *,
    since: float,
    published: Callable[[list[str]], list[bool]] | None = None,
    shown: int = SHOWN,
) -> Scan:
    """Match `rule` on the items retained since `since`, newest first, and say per story
    whether its first matching original would raise `new`: `published` tells whether alert
    ids were published (None: the rule never alerted, being tried out)."""
    found = search(rule, retained, since=since, shown=shown)
    scanned = Scan(
        count=found.count,
        scanned=found.searched,
        complete=found.complete,
        unchecked=found.unchecked,
        unindexed=found.unindexed,
    )
    for kept, match in found.matches:
        doc = document_of(kept)
        scanned.matches.append(ScanMatch(kept, match, _clauses(rule, doc)))
    originals = [s for s, outcomes in found.stories.items() if any(o.is_original for o in outcomes)]
    new = [alert_id(rule.id, story, AlertKind.NEW) for story in originals]
    alerted = dict(zip(originals, published(new) if published else [False] * len(new), strict=True))
    for story in found.stories:
        if story not in alerted:
            scanned.stories[story] = Verdict.COPY
        else:
            scanned.stories[story] = Verdict.ALERTED if alerted[story] else Verdict.WOULD_ALERT
    return scanned


def _clauses(rule: Rule, doc: Document) -> list[Clause]:
    clauses = []
    for clause in rule.clauses:
        spans = evaluate(clause, doc)
        clauses.append(Clause(str(clause), spans is not None, explain(spans or [], doc)[:4]))
    return clauses
