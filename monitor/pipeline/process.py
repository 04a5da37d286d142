"""process(item): the one place where the stages are composed.

    article  <- the feed's full text, else the page fetched and extracted (trafilatura)
    analysis <- the text read once: tokens, words, shingles, term counts, names, wires, URL
    placement <- dedup index (seen / same item / near-duplicate / same story / new story)
    matches  <- every rule, on the article (whatever the placement)
    alerts   <- for originals only, and only for news (a report older than alerts.max_age when
                first seen, or from a new feed's back catalogue, raises none):
                claim new/update per (story, rule), publish idempotently

Every step may repeat after a crash: placement is recorded per item, claims are per item,
alert ids are derived. Processing an item twice publishes nothing new.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog

from monitor.dedup.analysis import Analysis, analyse
from monitor.dedup.index import DedupIndex
from monitor.dedup.wires import credited
from monitor.delivery.alerts import build_alert
from monitor.delivery.queue import AlertQueue
from monitor.errors import ExtractError, FetchError, MonitorError
from monitor.extract import MIN_TEXT, detect_language, extract, html_to_text
from monitor.ingest.fetch import Fetcher, Page
from monitor.model import (
    AlertKind,
    Article,
    Item,
    Outcome,
    Placement,
    RuleMatch,
    Source,
    report_time,
)
from monitor.retained.cards import Desk
from monitor.retained.items import RetainedItems
from monitor.rules import Document, Rule, RuleSet

log = structlog.get_logger(__name__)


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
    warnings: list[str] = field(default_factory=list)
    alert_suppressed: str = ""  # why an original raised no alert ("older than 48h"), if so

    @property
    def outcome_folded(self) -> bool:
        """Folded into another entry with the same canonical URL (same item): counted."""
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
    ) -> None:
        self.fetcher = fetcher
        self.index = index
        self.rules = rules
        self.queue = queue
        self.retained = retained
        self.max_age = max_age  # seconds; 0: any report may alert (alerts.max_age)
        self.desk = desk  # what the web desk reads, filed beside the retained items

    def process(self, item: Item, page: Page | MonitorError | None = None) -> Processed:
        """Process one item. `page` is its page when the caller fetched it already
        (or the error that fetching gave); otherwise it is fetched here when needed."""
        started = time.perf_counter()
        item, article, analysis, warnings = self._read(item, page)
        placement = self.index.place(item, article, analysis=analysis)
        return self._matched(item, article, analysis, placement, warnings, started)

    def _read(
        self, item: Item, page: Page | MonitorError | None
    ) -> tuple[Item, Article, Analysis, list[str]]:
        """The item's article (its date adopted when the feed gave none), read once."""
        article, warnings = self._article(item, page)
        if item.published is None and article.published is not None:
            # The page's own date is the report's date when the feed gave none.
            item = dataclasses.replace(item, published=article.published)
        return item, article, analyse(item, article), warnings

    def _matched(
        self,
        item: Item,
        article: Article,
        analysis: Analysis,
        placement: Placement,
        warnings: list[str],
        started: float,
    ) -> Processed:
        """The rules, retention and alerts of a placed item."""
        url = analysis.url
        doc = Document(
            title=analysis.title,
            text=article.text,
            source=item.source,
            lang=article.language,
            url=url,
            tokens={"title": analysis.title_tokens, "text": analysis.text_tokens},
        )
        matches = self.rules.match(doc)
        if self.retained is not None and placement.outcome is not Outcome.SEEN:
            entry = self.retained.append(item, article, url, placement)
            if self.desk is not None:
                self.desk.record(
                    entry,
                    item,
                    article,
                    url,
                    placement,
                    [m.rule_id for m in matches],
                    analysis.wires,
                )
        alerts: list[tuple[str, str]] = []
        suppressed = ""
        if placement.outcome.is_original or (
            placement.outcome is Outcome.SEEN
            and placement.first_outcome is not None
            and placement.first_outcome.is_original
        ):
            suppressed = self.suppression(item)
            if not suppressed:
                alerts = self.alert(item, article, url, placement, matches, wires=analysis.wires)
        log.info(
            "item_processed",
            item=item.id,
            feed=item.feed,
            story=placement.story_id,
            outcome=str(placement.outcome),
            rules=[m.rule_id for m in matches],
            alerts=[a for a, _ in alerts],
            alert_suppressed=(suppressed or None) if matches else None,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return Processed(
            item=item,
            article=article,
            url=url,
            placement=placement,
            matches=matches,
            alerts=[a for a, _ in alerts],
            alert_rules=[r for _, r in alerts],
            wires=analysis.wires,
            warnings=warnings,
            alert_suppressed=suppressed,
        )

    def suppression(self, item: Item, now: datetime | None = None) -> str:
        """Why this report raises no alert, or "" when it may (DESIGN §4.5): older than
        `max_age` when first seen; from a feed's back catalogue (its first poll) and either
        that old or undated."""
        seen = item.first_seen or now or datetime.now(UTC)
        when = report_time(item.published, seen)
        if self.max_age and when is not None and seen - when > timedelta(seconds=self.max_age):
            return f"older than {_duration(self.max_age)}"
        if item.baseline and item.published is None:
            return "undated, on the feed's first poll"
        return ""

    def needs_page(self, item: Item) -> bool:
        if not item.url or item.shared_page:
            # Nothing to fetch, or a page shared by several entries (not this entry's
            # article): the feed's text is all there is.
            return False
        return len(html_to_text(item.content)) < MIN_TEXT if item.content else True

    def _article(
        self, item: Item, page: Page | MonitorError | None = None
    ) -> tuple[Article, list[str]]:
        return self.article_of(item, self.fetcher, page)

    @staticmethod
    def article_of(
        item: Item, fetcher: Fetcher, page: Page | MonitorError | None = None
    ) -> tuple[Article, list[str]]:
        """The feed's own full text when it has one, else the page's; if the page cannot
        be had, the feed summary (the item is never dropped for it)."""
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
            return extract(
                page.body, url=page.url, metadata=not (item.title and item.published)
            ), []
        except (FetchError, ExtractError) as exc:  # anything else is the caller's to handle
            log.warning("article_unavailable", item=item.id, url=item.url, error=str(exc))
            text = content or html_to_text(item.summary) or item.title
            fallback = Article(
                text=text, title=item.title, language=detect_language(text), summary_only=True
            )
            return fallback, [str(exc)]

    def alert(
        self,
        item: Item,
        article: Article,
        url: str,
        placement: Placement,
        matches: list[RuleMatch],
        *,
        wires: tuple[str, ...] | None = None,
        backfill: bool = False,
        at: float | None = None,
    ) -> list[tuple[str, str]]:
        """Claim and publish the alerts of an original item: (alert id, rule id) of those
        published now (`wires`: the agencies its text credits, if known already). Repeating
        it for the same item publishes nothing new."""
        wires = credited(article.text) if wires is None else wires
        published = []
        known: list[tuple[int, list[Source]]] = []

        def story() -> tuple[int, list[Source]]:
            """The story's size and members, read once per item (when an alert needs them)."""
            if not known:
                size, sources = self.index.story(placement.story_id)
                if not size:  # the story left the dedup window (a late backfill): the item alone
                    when = item.published or article.published
                    itself = Source(
                        item.id,
                        item.source,
                        url,
                        item.title or article.title,
                        when.isoformat() if when else "",
                        wires,
                    )
                    size, sources = 1, [itself]
                known.append((size, sources))
            return known[0]

        muted = (
            self.desk.muted([m.rule_id for m in matches], placement.story_id, item.source)
            if self.desk is not None
            else set()
        )
        # The first report of a new story most likely raises `new`: built without asking.
        first = Outcome.NEW_STORY in (placement.outcome, placement.first_outcome)
        guess = 0 if first else None
        for match in matches:
            if match.rule_id in muted:
                log.info(
                    "alert_muted",
                    rule=match.rule_id,
                    story=placement.story_id,
                    item=item.id,
                    source=item.source,
                )
                continue
            rule = self.rules.get(match.rule_id)
            assert rule is not None  # matches come from this rule set

            def build(kind: AlertKind, update: int, rule: Rule = rule, match: RuleMatch = match):
                size, sources = story()
                return build_alert(
                    kind=kind,
                    rule=rule,
                    match=match,
                    story_id=placement.story_id,
                    story_size=size,
                    sources=sources,
                    item=item,
                    article=article,
                    url=url,
                    now=datetime.now(UTC),
                    backfill=backfill,
                    update=update,
                    wires=wires,
                )

            # The claim and the publication are one step (one script): no crash between them.
            done = self.queue.claim_and_publish(
                placement.story_id,
                rule.id,
                item.id,
                build,
                at=at,
                quiet=self.index.quiet,
                claim_ttl=self.index.claim_ttl,
                guess=guess,
            )
            if done is None or done[1] is None:
                continue  # nothing to raise, or raised before
            alert = done[0]
            published.append((alert["id"], rule.id))
            log.info(
                "alert_published",
                alert=alert["id"],
                kind=alert["kind"],
                rule=rule.id,
                story=placement.story_id,
                item=item.id,
                backfill=backfill or None,
            )
        return published


def _duration(seconds: float) -> str:
    """How settings write a duration: 3d, 48h, 90m, 45s."""
    if seconds % 86400 == 0 and seconds > 2 * 86400:
        return f"{int(seconds // 86400)}d"
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"
