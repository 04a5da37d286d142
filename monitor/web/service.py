"""What the desk's pages show and do, as plain data: stories, a story with its hits and
alerts, alerts (as a page and live), feeds and their actions, rules and their recent
matches, a rule tried on retained items, search, mutes. No HTTP here: the routes parse a
request, call one of these and render what it gives."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from monitor.config import FeedConfig, Settings
from monitor.delivery.queue import Delivered
from monitor.errors import MonitorError
from monitor.ingest.poll import feed_id
from monitor.ingest.registry import FeedRegistry, feed_rows, merged, poll_now
from monitor.model import Hit
from monitor.pipeline import backfill, runtime
from monitor.pipeline.top import Top, top_stories
from monitor.retained.cards import Desk, Filters, StoryCard
from monitor.retained.items import Retained, RetainedItems
from monitor.rules import Rule, RuleFiles, RuleSet, ad_hoc_rule
from monitor.store.keys import Keys
from monitor.web.reading import alert_passes, alert_row

STORIES = 50  # stories a page lists
ALERTS = 500  # alerts the alerts page looks through (it lists the first 100)
STORY_ALERTS = 5000  # alerts a story page looks through for the story's own
LIVE_BATCH = 50  # alerts a live view reads at once
LIVE_WAIT_MS = 1000  # how long one read of a live view waits for a new alert
FEED_ACTIONS = ("pause", "resume", "poll-now")
MUTE_SCOPES = ("story", "source")


@dataclass(frozen=True, slots=True)
class Stories:
    cards: list[StoryCard]
    total: int  # retained stories
    ms: float  # how long finding the cards took


@dataclass(frozen=True, slots=True)
class StoryPage:
    card: StoryCard
    hits: dict[str, list[tuple[str, list[Hit]]]]  # retained entry -> per rule, its hits
    alerts: list[dict[str, Any]]
    mutes: dict[str, set[str]]


@dataclass(frozen=True, slots=True)
class Tried:
    """A query tried on retained items: what it found, or why it could not be."""

    found: backfill.Scan | None = None
    error: str = ""
    hints: tuple[str, ...] = ()  # likely mistakes that parse ("did you mean AND?")


@dataclass(frozen=True, slots=True)
class RulesPage:
    tried: Tried
    text: str  # the query tried (the chosen rule's when none was typed)
    chosen: Rule | None
    recent: dict[str, list[StoryCard]]  # per rule, its recent stories


class DeskService:
    """The desk's reads and writes over Redis. `rules`: a fixed rule set, or a rules
    directory's, which the desk loads again when its files change (`reload`; a daemon's
    desk leaves that to the daemon, and shows the rules it runs)."""

    def __init__(
        self,
        settings: Settings,
        client: redis.Redis,
        rules: RuleSet | RuleFiles,
        *,
        reload: bool = True,
    ) -> None:
        self.settings = settings
        self.client = client
        self.rule_files = rules if isinstance(rules, RuleFiles) else None
        self.rules_of: Callable[[], RuleSet]
        if isinstance(rules, RuleSet):
            self.rules_of = lambda: rules
        elif reload:
            self.rules_of = rules.current
        else:
            self.rules_of = lambda: rules.rules
        self.keys = Keys(settings.prefix)
        retention = settings.retention_days * 86400
        self.cards = Desk(client, self.keys, retention=retention)
        self.retained = RetainedItems(
            client, self.keys, retention=retention, maxlen=settings.retention_max_items
        )
        self.queue = runtime.alert_queue(client, settings)

    @property
    def rules(self) -> RuleSet:
        return self.rules_of()

    @property
    def rules_error(self) -> str:
        """Why the rules directory's files are not the rules in force ("": they are)."""
        return self.rule_files.error if self.rule_files else ""

    # --- stories --------------------------------------------------------------------

    def stories(self, filters: Filters, before: float | None) -> Stories:
        started = time.perf_counter()
        cards = self.cards.stories(limit=STORIES, before=before, filters=filters)
        ms = round((time.perf_counter() - started) * 1000, 1)
        return Stories(cards, self.cards.count(), ms)

    def top(self, hours: int, rule: str) -> Top:
        """The top stories of the `hours` up to the newest report time (pipeline/top.py)."""
        return top_stories(self.client, self.keys, hours=hours, limit=30, rule=rule or None)

    def story(self, story_id: str) -> StoryPage | None:
        card = self.cards.story(story_id)
        if card is None:
            return None
        entries = [r.entry for r in card.reports]
        kept = dict(zip(entries, self.retained.get(entries), strict=True))
        hits = {entry: self._hits(item) for entry, item in kept.items() if item is not None}
        alerts = [
            d.alert
            for d in self.queue.latest(STORY_ALERTS, containing=card.id)
            if d.alert["story"]["id"] == card.id
        ]
        return StoryPage(card, hits, alerts, self.cards.mutes_of(card))

    def _hits(self, kept: Retained) -> list[tuple[str, list[Hit]]]:
        """Per matching rule, the first hit of each of its terms (an alias counts once)."""
        shown = []
        for match in self.rules.match(backfill.document_of(kept)):
            first: dict[str, Hit] = {}
            for hit in match.hits:
                first.setdefault(hit.term.split(":", 1)[0], hit)
            shown.append((match.rule_id, list(first.values())))
        return shown

    def mute(self, story_id: str, rule_id: str, scope: str, source: str, *, undo: bool) -> bool:
        """Mute (or unmute) `rule_id` for the story or for `source`; False for an unknown
        rule or scope."""
        if self.rules.get(rule_id) is None or scope not in MUTE_SCOPES:
            return False
        self.cards.mute(rule_id, scope, story_id if scope == "story" else source, undo=undo)
        return True

    # --- alerts ---------------------------------------------------------------------

    def alerts(self, rule: str, severity: str) -> list[Delivered]:
        """The newest alerts passing the filters, newest first."""
        return [d for d in self.queue.latest(ALERTS) if alert_passes(d.alert, rule, severity)]

    def newest_alert(self) -> str:
        """The entry id of the newest alert ("0-0": none yet), where a live view starts."""
        newest = self.queue.latest(1)
        return newest[0].entry_id if newest else "0-0"

    def alerts_after(
        self, after: str, rule: str, severity: str
    ) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
        """The next alerts after entry `after` (waiting a little for one): the position
        reached and, of those passing the filters, each entry id and row."""
        rows = []
        for delivered in self.queue.after(after, count=LIVE_BATCH, block_ms=LIVE_WAIT_MS):
            after = delivered.entry_id
            if alert_passes(delivered.alert, rule, severity):
                rows.append((delivered.entry_id, alert_row(delivered.alert)))
        return after, rows

    # --- feeds ----------------------------------------------------------------------

    def feeds(self) -> list[dict[str, Any]]:
        """Every feed with its polling state, failing ones first."""
        rows = feed_rows(self.settings, self.client)
        rows.sort(key=lambda r: (not r["errors"], r["name"] or r["url"]))
        return rows

    def feed_action(self, fid: str, action: str) -> bool:
        """Pause, resume or poll now (one of FEED_ACTIONS) the feed; False: no such feed."""
        registry = FeedRegistry(self.client, self.keys)
        feeds = merged(self.settings.feeds, registry)
        feed: FeedConfig | None = next((f for f in feeds if feed_id(f) == fid), None)
        if feed is None:
            return False
        if action == "pause":
            registry.pause(feed)
        elif action == "resume":
            registry.resume(feed)
        else:
            poll_now(self.settings, self.client, feed, feeds)
        return True

    # --- rules, search --------------------------------------------------------------

    def rules_page(self, rule_id: str, text: str, days: float) -> RulesPage:
        """The rules with their recent stories, and `text` (or rule `rule_id`'s query)
        tried on the retained items of the last `days`."""
        chosen = self.rules.get(rule_id)
        text = text or (chosen.query if chosen else "")
        tried = Tried()
        if text:
            tried = self._try(text, days, chosen=chosen)
        recent = {  # each rule's recent matches, from the desk's index
            r.id: self.cards.stories(limit=5, filters=Filters(rule=r.id), scan=500)
            for r in self.rules.rules
        }
        return RulesPage(tried, text, chosen, recent)

    def search(self, text: str, days: float) -> Tried:
        """`text` (a query) tried on the retained items of the last `days`."""
        return self._try(text, days) if text else Tried()

    def _try(self, text: str, days: float, *, chosen: Rule | None = None) -> Tried:
        """A query run over the retained items; with `chosen` it is tried as that rule,
        whose published alerts count."""
        try:
            rule = ad_hoc_rule(text, self.rules.aliases, chosen.id if chosen else "query")
        except MonitorError as exc:
            return Tried(error=str(exc))
        found = backfill.scan(
            rule,
            self.retained,
            since=time.time() - days * 86400,
            published=self.queue.published if chosen else None,
        )
        return Tried(found, hints=tuple(w.message.removeprefix("query: ") for w in rule.warnings))
