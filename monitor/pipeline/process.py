"""process(item): the one place where the stages are composed.

    article  <- the feed's full text, else the page fetched and extracted (trafilatura)
    analysis <- the text read once: tokens, words, shingles, term counts, names, wires, URL
    placement <- dedup index (seen / same item / near-duplicate / same story / new story)
    matches  <- every rule, on the article (whatever the placement)
    adds     <- the sentences it adds to its story's earlier reports (new names, figures, claims)
    retained <- the item kept for backfills and search, and filed on the desk (unless seen
                before)
    alerts   <- for originals only, and only for news (a report older than alerts.max_age when
                first seen, or from a new feed's back catalogue, raises none):
                claim new/update per (story, rule), publish idempotently (a rule with
                `updates: when-new` raises an update only for a report that adds something),
                and `breaking` for the rules that ask for it, when the story's activity says
                it breaks at the report's time (monitor/dedup/breaking.py); each matching
                rule that raised none says why (muted, update held: quiet until ..., adds
                nothing new, already alerted for this item), and the desk notes it beside
                the report

Every step may repeat after a crash: placement is recorded per item, claims are per item,
alert ids are derived. Processing an item twice publishes nothing new.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property, partial
from typing import Any

import structlog

from monitor.config.settings import BreakingSettings
from monitor.dedup.activity import Activity
from monitor.dedup.analysis import Analysis, analyse
from monitor.dedup.breaking import Break, breaking
from monitor.dedup.index import DedupIndex
from monitor.delivery.alerts import build_alert
from monitor.delivery.queue import AlertQueue
from monitor.errors import ExtractError, FetchError, MonitorError
from monitor.extract import MIN_TEXT, detect_language, extract, html_to_text
from monitor.ingest.fetch import Fetcher, Page
from monitor.model import (
    Addition,
    AlertKind,
    Article,
    Item,
    Matched,
    Outcome,
    Placement,
    RuleMatch,
    Source,
    report_time,
)
from monitor.retained.adds import StoryFacts
from monitor.retained.cards import Desk
from monitor.retained.items import RetainedItems
from monitor.rules import Document, Rule, RuleSet
from monitor.units import format_duration

log = structlog.get_logger(__name__)

MUTED = "muted on the desk"
ALREADY_ALERTED = "already alerted for this item"
NOTHING_NEW = "update held: the report adds nothing new (updates = when-new)"


@dataclass(frozen=True, slots=True, kw_only=True)
class Processed:
    item: Item
    article: Article
    url: str  # canonical URL of the article
    placement: Placement
    matches: list[RuleMatch]
    alerts: list[str] = field(default_factory=list)  # ids published by this pass
    alert_rules: list[str] = field(default_factory=list)  # the rule of each, in order
    wires: tuple[str, ...] = ()  # agencies the article credits
    adds: tuple[Addition, ...] = ()  # what it adds to its story (retained/adds.py)
    warnings: list[str] = field(default_factory=list)
    alert_suppressed: str | None = None  # why an original raised no alert ("older than 48h")
    # Why each rule it matches raised no alert when the item was news, rule id -> reason
    # (MUTED, ALREADY_ALERTED, "update held: quiet until 14:07 UTC").
    alerts_held: dict[str, str] = field(default_factory=dict)

    @property
    def is_same_item(self) -> bool:
        """Another entry of an item already placed (same canonical URL): folded into it."""
        return self.placement.outcome is Outcome.SAME_ITEM


class Pipeline:
    def __init__(
        self,
        *,
        fetcher: Fetcher,
        index: DedupIndex,
        rules: RuleSet,
        queue: AlertQueue,
        retained: RetainedItems | None = None,
        max_age: float = 0.0,
        desk: Desk | None = None,
        breaking: BreakingSettings | None = None,
        breaking_quiet: float = 12 * 3600.0,
        facts: StoryFacts | None = None,
    ) -> None:
        self.fetcher = fetcher
        self.index = index
        self.rules = rules
        self.queue = queue
        self.retained = retained
        self.max_age = max_age  # seconds; 0: any report may alert (alerts.max_age)
        self.desk = desk  # what the web desk reads, filed beside the retained items
        self.breaking = breaking or BreakingSettings()  # when a story breaks
        self.breaking_quiet = breaking_quiet  # seconds of report time between two breaks
        self.activity = Activity(index.client, index.keys, window=index.window)
        self.facts = facts  # what each story has said: what a report adds is measured on it

    def process(self, item: Item, page: Page | MonitorError | None = None) -> Processed:
        """Process one item. `page` is its page when the caller fetched it already
        (or the error that fetching gave); otherwise it is fetched here when needed."""
        started = time.perf_counter()
        item, article, warnings = self._read(item, page)
        analysis = analyse(item, article)
        placement = self.index.place(item, article, analysis=analysis)
        matches = self.rules.match(_document(item, article, analysis))
        found = Matched(
            item=item,
            article=article,
            url=analysis.url,
            placement=placement,
            matches=matches,
            wires=analysis.wires,
            adds=self._adds(placement, analysis),
        )
        self._retain(found, analysis)
        alerted, suppressed = self._raise_alerts(found)
        self._note_held(found, alerted.held)
        result = Processed(
            item=item,
            article=article,
            url=found.url,
            placement=placement,
            matches=matches,
            alerts=[a for a, _ in alerted.published],
            alert_rules=[r for _, r in alerted.published],
            wires=found.wires,
            adds=found.adds,
            warnings=warnings,
            alert_suppressed=suppressed,
            alerts_held=alerted.held,
        )
        _log_processed(result, started)
        return result

    def _read(
        self, item: Item, page: Page | MonitorError | None
    ) -> tuple[Item, Article, list[str]]:
        """The item (with the page's date when the feed gave none), its article, and why
        the article is only the feed's summary, if it is."""
        article, warnings = article_of(item, self.fetcher, page)
        if item.published is None and article.published is not None:
            # The page's own date is the report's date when the feed gave none.
            item = dataclasses.replace(item, published=article.published)
        return item, article, warnings

    def _adds(self, placement: Placement, analysis: Analysis) -> tuple[Addition, ...]:
        """What the report adds to its story's earlier reports (nothing for one seen before:
        its facts are in already)."""
        if self.facts is None or placement.outcome is Outcome.SEEN:
            return ()
        folded = (analysis.title_words, analysis.words)
        measured = self.facts.measure(placement.story_id, analysis.title, analysis.text, folded)
        return tuple(measured)

    def _retain(self, found: Matched, analysis: Analysis) -> None:
        """Keep the item for backfills, and file it on the desk (a repeat is kept already)."""
        if self.retained is None or found.placement.outcome is Outcome.SEEN:
            return
        item, article, url, placement = found.item, found.article, found.url, found.placement
        text_words = analysis.words if article.text else []  # the analysis read the summary
        folded = (analysis.title_words, text_words)
        entry = self.retained.append(item, article, url, placement, folded)
        if self.desk is not None:
            self.desk.record(
                entry, item, article, url, placement, found.rule_ids, found.wires, found.adds
            )

    def _raise_alerts(self, found: Matched) -> tuple[Alerted, str | None]:
        """The alerts the item raises now, and why it raises none at all when it is an
        original held back by its age (why_held). Only originals alert; one seen before is
        retried, as its alerts may have been lost in a crash."""
        placement = found.placement
        first = placement.first_outcome
        original = placement.outcome.is_original or (
            placement.outcome is Outcome.SEEN and first is not None and first.is_original
        )
        if not original:
            return Alerted(), None
        held = self.why_held(found.item)
        if held is not None:
            return Alerted(), held
        return self.alert(found), None

    def _note_held(self, found: Matched, held: dict[str, str]) -> None:
        """Note on the desk why a report's rules raised no alert (after `_retain`, which
        files the report before the alerts: a crash between them loses no report). That
        the item alerted already is no news there: its alert is listed."""
        shown = {rule: why for rule, why in held.items() if why != ALREADY_ALERTED}
        if self.desk is not None and shown:
            self.desk.hold(found.placement.story_id, found.item.id, shown)

    def why_held(self, item: Item, now: datetime | None = None) -> str | None:
        """Why this report raises no alert, or None when it may. The age policy: older than
        `max_age` when first seen, or from a feed's back catalogue (its first poll) and
        either that old or undated."""
        seen = item.first_seen or now or datetime.now(UTC)
        when = report_time(item.published, seen)
        if self.max_age and when is not None and seen - when > timedelta(seconds=self.max_age):
            return f"older than {format_duration(self.max_age)}"
        if item.baseline and item.published is None:
            return "undated, on the feed's first poll"
        return None

    def needs_page(self, item: Item) -> bool:
        if not item.url or item.shared_page:
            # Nothing to fetch, or a page shared by several entries (not this entry's
            # article): the feed's text is all there is.
            return False
        return len(html_to_text(item.content)) < MIN_TEXT if item.content else True

    def alert(self, found: Matched, *, backfill: bool = False, at: float | None = None) -> Alerted:
        """Claim and publish the alerts of an original item: those published now, and why
        each other matching rule published none. `at`: when the claims are made (default
        now; a backfill gives when the item was processed). Repeating it for the same item
        publishes nothing new."""
        placement = found.placement
        drafts = _Drafts(found, self.index, backfill=backfill)
        # The first report of a new story most likely raises `new`: built without asking.
        first = Outcome.NEW_STORY in (placement.outcome, placement.first_outcome)
        guess = 0 if first else None
        muted = self._muted(found)
        alerted = Alerted(held=dict.fromkeys(muted, MUTED))
        for match in (m for m in found.matches if m.rule_id not in alerted.held):
            rule = self.rules.get(match.rule_id)
            assert rule is not None  # matches come from this rule set
            # The claim and the publication are one step (one script): no crash between them.
            done = self.queue.claim_and_publish(
                placement.story_id,
                rule.id,
                found.item.id,
                partial(drafts.build, rule, match),
                at=at,
                guess=guess,
                updates=rule.updates != "when-new" or bool(found.adds),
            )
            if done.alert is None:
                alerted.held[rule.id] = (
                    NOTHING_NEW if done.unwanted else quiet_until(done.held_until)
                )
                continue
            if done.entry is None:
                alerted.held[rule.id] = ALREADY_ALERTED
                continue
            alert = done.alert
            alerted.published.append((alert["id"], rule.id))
            log.info(
                "alert_published",
                alert=alert["id"],
                kind=alert["kind"],
                rule=rule.id,
                story=placement.story_id,
                item=found.item.id,
                backfill=backfill or None,
            )
        if not backfill:  # a backfill raises no `breaking`: the moment has passed
            self._raise_breaking(
                found, drafts, [m for m in found.matches if m.rule_id not in muted], alerted
            )
        return alerted

    def _raise_breaking(
        self, found: Matched, drafts: _Drafts, matches: list[RuleMatch], alerted: Alerted
    ) -> None:
        """`breaking` for the matching rules that ask for it, if the story breaks at this
        report's time (read only when one asks)."""
        asking = [(r, m) for m in matches if (r := self.rules.get(m.rule_id)) and r.breaking]
        if not asking:
            return
        item, story_id = found.item, found.placement.story_id
        at = (item.time or datetime.now(UTC)).timestamp()
        broke = breaking(self.activity, story_id, at, self.breaking)
        if broke is None:
            return
        for rule, match in asking:
            done = self.queue.claim_breaking(
                story_id,
                rule.id,
                item.id,
                partial(drafts.build_breaking, rule, match, broke),
                at=at,
                quiet=self.breaking_quiet,
            )
            if done.alert is None or done.entry is None:
                continue  # broke for the rule within the quiet hours, or published already
            alerted.published.append((done.alert["id"], rule.id))
            log.info(
                "alert_published",
                alert=done.alert["id"],
                kind=done.alert["kind"],
                rule=rule.id,
                story=story_id,
                item=item.id,
                reports=broke.reports,
                sources=len(broke.sources),
                expected=round(broke.expected, 2),
            )

    def _muted(self, found: Matched) -> list[str]:
        """The matching rules whose alerts are muted on the desk (for the story or the
        source)."""
        if self.desk is None:
            return []
        item, story_id = found.item, found.placement.story_id
        muted = self.desk.muted(found.rule_ids, story_id, item.source)
        mine = [r for r in found.rule_ids if r in muted]
        for rule_id in mine:
            log.info("alert_muted", rule=rule_id, story=story_id, item=item.id, source=item.source)
        return mine


@dataclass(frozen=True, slots=True)
class Alerted:
    """What claiming an item's alerts did: the alerts published, (alert id, rule id) each,
    and why each other matching rule raised none (rule id -> reason)."""

    published: list[tuple[str, str]] = field(default_factory=list)
    held: dict[str, str] = field(default_factory=dict)


def quiet_until(until: float | None, now: datetime | None = None) -> str:
    """Why an update is held: "update held: quiet until 14:07 UTC" (the minute rounded up,
    when an update may alert again; with the date when it is not today's)."""
    if until is None:
        return "update held: quiet period"
    when = datetime.fromtimestamp(math.ceil(until / 60) * 60, UTC)
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    shown = when.strftime("%H:%M" if when.date() == today else "%Y-%m-%d %H:%M")
    return f"update held: quiet until {shown} UTC"


class _Drafts:
    """The alerts of one item, built on demand. They share the story's size and members,
    read once, when the first is built (most matches raise none: their story alerted)."""

    def __init__(self, found: Matched, index: DedupIndex, *, backfill: bool) -> None:
        self.found = found
        self.index = index
        self.backfill = backfill

    @cached_property
    def story(self) -> tuple[int, list[Source]]:
        found = self.found
        size, sources = self.index.story(found.placement.story_id)
        if size:
            return size, sources
        # The story left the dedup window (a late backfill): the item alone.
        item, article = found.item, found.article
        when = item.published or article.published
        itself = Source(
            item.id,
            item.source,
            found.url,
            item.title or article.title,
            when.isoformat() if when else "",
            found.wires,
        )
        return 1, [itself]

    def build_breaking(
        self, rule: Rule, match: RuleMatch, broke: Break, number: int
    ) -> dict[str, Any]:
        return self.build(rule, match, AlertKind.BREAKING, number, broke.as_dict())

    def build(
        self,
        rule: Rule,
        match: RuleMatch,
        kind: AlertKind,
        update: int,
        breaking: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        size, sources = self.story
        found = self.found
        return build_alert(
            kind=kind,
            rule=rule,
            match=match,
            story_id=found.placement.story_id,
            story_size=size,
            sources=sources,
            item=found.item,
            article=found.article,
            url=found.url,
            now=datetime.now(UTC),
            backfill=self.backfill,
            update=update,
            wires=found.wires,
            breaking=breaking,
            adds=found.adds,
        )


def article_of(
    item: Item, fetcher: Fetcher, page: Page | MonitorError | None = None
) -> tuple[Article, list[str]]:
    """The feed's own full text when it has one, else the page's; if the page cannot be
    had, the feed summary (the item is never dropped for it), and why."""
    content = html_to_text(item.content) if item.content else ""
    if len(content) >= MIN_TEXT or (item.shared_page and page is None):
        text = content or html_to_text(item.summary) or item.title
        return Article(text=text, title=item.title, language=detect_language(text)), []
    try:
        if isinstance(page, MonitorError):
            raise page
        if page is None and not item.url:
            raise FetchError(item.guid, "the entry has no link")
        page = page or fetcher.fetch(item.url)
        # The feed's title and date make the page's metadata search unnecessary.
        return extract(page.body, url=page.url, metadata=not (item.title and item.published)), []
    except (FetchError, ExtractError) as exc:  # anything else is the caller's to handle
        log.warning("article_unavailable", item=item.id, url=item.url, error=str(exc))
        text = content or html_to_text(item.summary) or item.title
        fallback = Article(
            text=text, title=item.title, language=detect_language(text), summary_only=True
        )
        return fallback, [str(exc)]


def _document(item: Item, article: Article, analysis: Analysis) -> Document:
    """What the rules read: the article, tokenised once (by the analysis)."""
    return Document(
        title=analysis.title,
        text=article.text,
        source=item.source,
        lang=article.language,
        url=analysis.url,
        tokens={"title": analysis.title_tokens, "text": analysis.text_tokens},
    )


def _log_processed(result: Processed, started: float) -> None:
    """The canonical line of an item: one per item processed."""
    log.info(
        "item_processed",
        item=result.item.id,
        feed=result.item.feed,
        story=result.placement.story_id,
        outcome=str(result.placement.outcome),
        rules=[m.rule_id for m in result.matches],
        alerts=result.alerts,
        alert_suppressed=result.alert_suppressed if result.matches else None,
        alerts_held=result.alerts_held or None,
        ms=round((time.perf_counter() - started) * 1000, 1),
    )
