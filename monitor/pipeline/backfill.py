"""Running a rule over retained items (`monitor rules backfill`, and automatically for a new
rule with a `backfill` window): the alerts it would have raised live, one per story, raised
now — through the same claims as live processing, so the same alert ids, nothing twice."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from monitor.dedup.wires import credited
from monitor.model import AlertKind, RuleMatch, alert_id
from monitor.pipeline.process import Matched, Pipeline
from monitor.retained.items import Retained, RetainedItems
from monitor.rules import Document, Rule


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
        doc = Document(
            title=kept.item.title or kept.article.title,
            text=kept.article.text,
            source=kept.item.source,
            lang=kept.article.language,
            url=kept.url,
        )
        match = rule.match(doc)
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
        published = pipeline.alert(found, backfill=True, at=kept.processed_at)
        story.alerts.extend(a for a, _ in published)
    return report
