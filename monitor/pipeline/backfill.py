"""Running a rule over retained items (`monitor rules backfill`, and automatically for a new
rule with a `backfill` window): the alerts it would have raised live, one per story, raised
now — through the same claims as live processing, so the same alert ids, nothing twice.
And trying one (`scan`, the desk's rule tester and search): what it matches among the
newest retained items, and which stories it would alert for, without publishing."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, NamedTuple

from monitor.dedup.wires import credited
from monitor.model import AlertKind, Hit, Matched, RuleMatch, alert_id
from monitor.retained.items import Retained, RetainedItems, retained_entry
from monitor.rules import Document, Rule, prefilter
from monitor.rules.match import evaluate, explain

if TYPE_CHECKING:  # a scan builds no pipeline: the desk imports this without the extractor
    from monitor.pipeline.process import Pipeline

SCAN_ITEMS = 2000  # retained items a scan looks through, newest first
SHOWN = 200  # matches a scan keeps (with their clauses explained); all are counted


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


def document_of(kept: Retained) -> Document:
    """A retained item as rules see it (the same fields as live processing)."""
    return Document(
        title=kept.item.title or kept.article.title,
        text=kept.article.text,
        source=kept.item.source,
        lang=kept.article.language,
        url=kept.url,
    )


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
    """What a rule matches among the newest retained items."""

    matches: list[ScanMatch] = field(default_factory=list)  # the first SHOWN, newest first
    count: int = 0  # all the matches
    scanned: int = 0  # retained items looked through
    stories: dict[str, Verdict] = field(default_factory=dict)

    @property
    def would_alert(self) -> int:
        return sum(v is Verdict.WOULD_ALERT for v in self.stories.values())


def scan(
    rule: Rule,
    retained: RetainedItems,
    *,
    since: float,
    published: Callable[[str], bool] | None = None,
    limit: int = SCAN_ITEMS,
    shown: int = SHOWN,
) -> Scan:
    """Match `rule` on the newest `limit` items retained since `since`, newest first, and
    say per story whether its first matching original would raise `new`: `published` tells
    whether an alert id was published (None: the rule never alerted, being tried out)."""
    found = Scan()
    needs = prefilter.keys(rule.node)  # a match has one of these words (None: no such word)
    for entry_id, fields in islice(retained.newest_entries(since), limit):
        found.scanned += 1
        if needs is not None and not _may_contain(fields, needs):
            continue
        kept = retained_entry(entry_id, fields)
        doc = document_of(kept)
        match = rule.match(doc)
        if match is None:
            continue
        found.count += 1
        if len(found.matches) < shown:
            found.matches.append(ScanMatch(kept, match, _clauses(rule, doc)))
        story = kept.placement.story_id
        if kept.placement.outcome.is_original:
            if found.stories.get(story, Verdict.COPY) is Verdict.COPY:
                new = alert_id(rule.id, story, AlertKind.NEW)
                alerted = published is not None and published(new)
                found.stories[story] = Verdict.ALERTED if alerted else Verdict.WOULD_ALERT
        else:
            found.stories.setdefault(story, Verdict.COPY)
    return found


def _clauses(rule: Rule, doc: Document) -> list[Clause]:
    clauses = []
    for clause in rule.clauses:
        spans = evaluate(clause, doc)
        clauses.append(Clause(str(clause), spans is not None, explain(spans or [], doc)[:4]))
    return clauses


def _may_contain(fields: dict[str, str], needs: frozenset[tuple[str, bool]]) -> bool:
    """Whether a retained item may hold one of the (folded) words a match needs: a cheap
    look at its raw text before it is parsed and tokenised. Exact for ASCII text (a word
    or prefix that is not a substring of the lower-cased text cannot be one of its
    tokens); other text is always looked at properly."""
    text = "\n".join(fields.values())  # text, title, the item (source, summary), language
    if not text.isascii():
        return True
    lower = text.lower()
    return any(word in lower for word, _ in needs)
