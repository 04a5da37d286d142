"""What the web desk reads: one compact record per retained report, filed under its story,
and the stories ordered by their latest report — so the stories page costs the same with
100,000 retained items as with 100.

    desk:stories          sorted set: story id -> when it last got a report (Unix seconds)
    desk:story:<id>       list: one line per report, "<retained entry id>\t<JSON>"
    desk:held:<id>        hash: item id -> JSON, rule id -> why it raised no alert
    mutes:<rule>          set: "story:<id>" and "source:<name>" that raise no alert for it

Both expire with the retention of processed items; the full texts stay in the retained
stream, found by entry id.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis

from monitor.model import Addition, Article, Item, Outcome, Placement
from monitor.store.keys import Keys


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """One report of a story, as the desk lists it."""

    entry: str  # its entry in the retained stream
    item: str
    title: str
    source: str
    url: str
    time: str  # the report's time, ISO 8601 (or "")
    processed: float
    outcome: str
    duplicate_of: str = ""
    language: str = ""
    wires: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    held: dict[str, str] = field(default_factory=dict)  # rule id -> why it raised no alert
    adds: tuple[Addition, ...] = ()  # what it added to the story's earlier reports

    @property
    def when(self) -> datetime | None:
        return datetime.fromisoformat(self.time) if self.time else None


@dataclass(frozen=True, slots=True, kw_only=True)
class StoryCard:
    """A story as the stories page shows it."""

    id: str
    reports: list[Report] = field(default_factory=list)  # in processing order

    @property
    def headline(self) -> str:
        originals = [r for r in self.reports if Outcome(r.outcome).is_original] or self.reports
        return originals[0].title if originals else ""

    @property
    def size(self) -> int:
        return len(self.reports)

    @property
    def sources(self) -> list[str]:
        return list(dict.fromkeys(r.source for r in self.reports if r.source))

    @property
    def wires(self) -> list[str]:
        return sorted({w for r in self.reports for w in r.wires})

    @property
    def rules(self) -> list[str]:
        return sorted({rule for r in self.reports for rule in r.rules})

    @property
    def languages(self) -> list[str]:
        return sorted({r.language for r in self.reports if r.language})

    @property
    def first(self) -> datetime | None:
        times = [r.when for r in self.reports if r.when]
        return min(times) if times else None

    @property
    def last(self) -> datetime | None:
        times = [r.when for r in self.reports if r.when]
        return max(times) if times else None

    @property
    def active(self) -> datetime:
        """When it last got a report (processing time)."""
        return datetime.fromtimestamp(max(r.processed for r in self.reports), UTC)

    def folded(self) -> list[tuple[Report, list[Report]]]:
        """Each original with the near-duplicate copies of it folded under it."""
        copies: dict[str, list[Report]] = {}
        for r in self.reports:
            if r.outcome == Outcome.NEAR_DUPLICATE and r.duplicate_of:
                copies.setdefault(r.duplicate_of, []).append(r)
        shown = [r for r in self.reports if r.outcome != Outcome.NEAR_DUPLICATE]
        placed = {r.item for r in shown}
        for original, group in copies.items():  # copies of an item no longer listed
            if original not in placed:
                shown.extend(group)
                copies[original] = []
        return [(r, copies.get(r.item, [])) for r in shown]


@dataclass(frozen=True, slots=True)
class Filters:
    rule: str = ""
    source: str = ""
    language: str = ""
    since: float = 0.0  # Unix seconds: stories active since

    def keep(self, card: StoryCard) -> bool:
        if self.rule and self.rule not in card.rules:
            return False
        if self.source and not any(self.source.lower() in s.lower() for s in card.sources):
            return False
        return not (self.language and self.language not in card.languages)


class Desk:
    def __init__(self, client: redis.Redis, keys: Keys, *, retention: float) -> None:
        self.client = client
        self.keys = keys
        self.retention = retention

    def record(
        self,
        entry: str,
        item: Item,
        article: Article,
        url: str,
        placement: Placement,
        rules: Iterable[str],
        wires: Iterable[str] = (),
        adds: Iterable[Addition] = (),
    ) -> None:
        """File a retained report under its story (one round trip)."""
        now = time.time()
        when = item.time or article.published
        report = {
            "item": item.id,
            "title": item.title or article.title,
            "source": item.source,
            "url": url,
            "time": when.isoformat() if when else "",
            "processed": round(now, 3),
            "outcome": str(placement.outcome),
            "duplicate_of": placement.duplicate_of or "",
            "language": article.language,
            "wires": list(wires),
            "rules": list(rules),
            "adds": [a.to_json() for a in adds],
        }
        key = self.keys.desk_story(placement.story_id)
        pipe = self.client.pipeline(transaction=False)
        pipe.rpush(key, entry + "\t" + json.dumps(report, ensure_ascii=False))
        pipe.expire(key, int(self.retention))
        pipe.zadd(self.keys.desk_stories, {placement.story_id: now})
        pipe.zremrangebyscore(self.keys.desk_stories, "-inf", now - self.retention)
        pipe.execute()

    def hold(self, story_id: str, item_id: str, held: dict[str, str]) -> None:
        """Note why the rules of a report filed under the story raised no alert (rule id ->
        why), beside it; it expires with the story's reports."""
        key = self.keys.desk_held(story_id)
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(key, item_id, json.dumps(held, ensure_ascii=False))
        pipe.expire(key, int(self.retention))
        pipe.execute()

    def stories(
        self,
        *,
        limit: int = 50,
        before: float | None = None,
        filters: Filters = Filters(),
        scan: int = 2000,
    ) -> list[StoryCard]:
        """The stories with the latest activity first (before `before`), at most `limit`
        that pass `filters`, looking through at most `scan` stories."""
        found: list[StoryCard] = []
        high: str | float = f"({before}" if before else "+inf"
        low = filters.since or "-inf"
        offset, page = 0, max(limit, 100)
        while len(found) < limit and offset < scan:
            ids = self.client.zrevrangebyscore(
                self.keys.desk_stories, high, low, start=offset, num=page
            )
            if not ids:
                break
            offset += len(ids)
            for card in self._cards(ids):
                if card.reports and filters.keep(card):
                    found.append(card)
                    if len(found) == limit:
                        break
        return found

    def story(self, story_id: str) -> StoryCard | None:
        (card,) = self._cards([story_id], held=True)
        return card if card.reports else None

    def mute(self, rule_id: str, scope: str, value: str, *, undo: bool = False) -> None:
        """Stop (or with `undo`, restart) alerts of `rule_id` for a story or a source."""
        member = f"{scope}:{value.casefold() if scope == 'source' else value}"
        if undo:
            self.client.srem(self.keys.mutes(rule_id), member)
        else:
            self.client.sadd(self.keys.mutes(rule_id), member)

    def muted(self, rule_ids: Iterable[str], story_id: str, source: str) -> set[str]:
        """Those of the rules whose alerts are muted for this story or this source (one
        round trip for all of them)."""
        rule_ids = list(rule_ids)
        if not rule_ids:
            return set()
        members = [f"story:{story_id}", f"source:{source.casefold()}"]
        pipe = self.client.pipeline(transaction=False)
        for rule_id in rule_ids:
            pipe.smismember(self.keys.mutes(rule_id), members)
        return {r for r, found in zip(rule_ids, pipe.execute(), strict=True) if any(found)}

    def mutes_of(self, card: StoryCard) -> dict[str, set[str]]:
        """Per rule of the story: what is muted of it ("story", or "source:<name>")."""
        pipe = self.client.pipeline(transaction=False)
        for rule_id in card.rules:
            pipe.smembers(self.keys.mutes(rule_id))
        mutes: dict[str, set[str]] = {}
        sources = {s.casefold(): s for s in card.sources}
        for rule_id, members in zip(card.rules, pipe.execute(), strict=True):
            mine = {"story"} if f"story:{card.id}" in members else set()
            mine |= {
                f"source:{sources[m[7:]]}"
                for m in members
                if m.startswith("source:") and m[7:] in sources
            }
            mutes[rule_id] = mine
        return mutes

    def count(self) -> int:
        return int(self.client.zcard(self.keys.desk_stories))

    def _cards(self, ids: list[str], *, held: bool = False) -> list[StoryCard]:
        """The stories' cards; with `held`, their reports say why their rules raised no
        alert (a story page's: the lists of stories do not show it)."""
        pipe = self.client.pipeline(transaction=False)
        for story_id in ids:
            pipe.lrange(self.keys.desk_story(story_id), 0, -1)
            if held:
                pipe.hgetall(self.keys.desk_held(story_id))
        replies = pipe.execute()
        lists, notes = (replies[::2], replies[1::2]) if held else (replies, [{}] * len(ids))
        return [
            StoryCard(id=story_id, reports=[_report(line, note) for line in lines])
            for story_id, lines, note in zip(ids, lists, notes, strict=True)
        ]


def _report(line: str, held: dict[str, str]) -> Report:
    entry, _, body = line.partition("\t")
    data = json.loads(body)
    why = held.get(data["item"])
    return Report(
        entry=entry,
        item=data["item"],
        title=data["title"],
        source=data["source"],
        url=data["url"],
        time=data["time"],
        processed=data["processed"],
        outcome=data["outcome"],
        duplicate_of=data["duplicate_of"],
        language=data["language"],
        wires=tuple(data["wires"]),
        rules=tuple(data["rules"]),
        held=json.loads(why) if why else {},
        adds=tuple(Addition.from_json(a) for a in data.get("adds", ())),
    )
