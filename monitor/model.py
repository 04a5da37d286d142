"""Plain, frozen data passed between the stages."""

from __future__ import annotations

import enum
import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

# A published date this far past the moment the entry was first seen is a skewed clock, not a
# time zone slip: the report's time is then the first-seen time.
CLOCK_SKEW = timedelta(minutes=10)


def report_time(published: datetime | None, first_seen: datetime | None) -> datetime | None:
    """A report's time, defined once: its published date, clamped to when it was first seen
    if it lies in the future, and the first-seen time if it has none."""
    if published is None:
        return first_seen
    if first_seen is not None and published > first_seen + CLOCK_SKEW:
        return first_seen
    return published


def stable_id(*parts: str, size: int = 16) -> str:
    """A short hex digest of the parts: the same parts always give the same id."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=size // 2)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    """One feed entry, as polling found it."""

    guid: str
    url: str
    title: str
    source: str
    feed: str
    summary: str = ""
    content: str = ""  # full text when the feed carries it
    published: datetime | None = None
    author: str = ""
    first_seen: datetime | None = None  # when polling (or a replay) first saw the entry
    # The link is one anchor of a page that carries several entries (a day's page with one
    # post per #fragment): the fragment is part of its identity, its text is the feed's.
    shared_page: bool = False
    # From a feed's first poll (its back catalogue): alerts only for recent reports.
    baseline: bool = False

    def __post_init__(self) -> None:
        if not (self.guid or self.url):
            raise ValueError("an item needs a guid or a url")

    @property
    def key(self) -> str:
        """The identity of the entry: its GUID, else its URL."""
        return self.guid or self.url

    @property
    def id(self) -> str:
        return stable_id("item", self.key)

    @property
    def time(self) -> datetime | None:
        """The report's time (see `report_time`): what story windows, ordering, entry
        selection and alert age use."""
        return report_time(self.published, self.first_seen)

    @property
    def skewed(self) -> bool:
        """Whether the feed dated the entry in the future (its clock is wrong)."""
        return self.published is not None and self.time != self.published

    def to_json(self) -> str:
        """The wire form on the items stream (JSON, never pickle)."""
        fields = {f: getattr(self, f) for f in self.__dataclass_fields__}
        for name in ("published", "first_seen"):
            when = fields[name]
            fields[name] = when.isoformat() if when else None
        return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: str) -> Item:
        fields = json.loads(data)
        for name in ("published", "first_seen"):
            if fields.get(name):
                fields[name] = datetime.fromisoformat(fields[name])
        return cls(**fields)


@dataclass(frozen=True, slots=True, kw_only=True)
class Article:
    """The text and metadata of an item after extraction."""

    text: str
    title: str = ""
    author: str = ""
    published: datetime | None = None
    site: str = ""
    language: str = ""
    canonical_url: str = ""
    from_page: bool = False  # False: the text is the feed's own content or summary
    summary_only: bool = False  # the page could not be fetched or extracted: feed summary

    @property
    def text_from(self) -> str:
        """Where the text came from: "page", "feed" (its full content) or "summary"."""
        return "page" if self.from_page else "summary" if self.summary_only else "feed"


class Outcome(enum.StrEnum):
    """How dedup placed an item (docs/architecture.md), plus `seen` for the same entry again."""

    SEEN = "seen"  # this very entry was processed before (re-poll, replay, re-delivery)
    SAME_ITEM = "same_item"  # another entry with the same canonical URL
    NEAR_DUPLICATE = "near_duplicate"  # the same text republished with small edits
    SAME_STORY = "same_story"  # another report of the same event
    NEW_STORY = "new_story"

    @property
    def is_original(self) -> bool:
        """A report of its own (a new story, or another report of one), not a copy: what
        may alert, is counted in document frequencies and shown as a story's member."""
        return self in (Outcome.NEW_STORY, Outcome.SAME_STORY)


@dataclass(frozen=True, slots=True, kw_only=True)
class Placement:
    """The dedup decision for one item."""

    outcome: Outcome
    story_id: str
    duplicate_of: str | None = None
    similarity: float = 0.0
    first_outcome: Outcome | None = None  # for SEEN: how the item was placed the first time


@dataclass(frozen=True, slots=True, kw_only=True)
class Hit:
    """One term that matched: which field, which term, and a snippet with the hit marked."""

    field: str
    term: str
    snippet: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleMatch:
    rule_id: str
    score: int
    hits: tuple[Hit, ...] = field(default_factory=tuple)


class AlertKind(enum.StrEnum):
    NEW = "new"
    UPDATE = "update"
    BREAKING = "breaking"


def alert_id(rule_id: str, story_id: str, kind: AlertKind, update: int = 1) -> str:
    """Derived, never random: the same rule, story, kind (and update or break number)
    always give the same id."""
    parts = ["alert", rule_id, story_id, str(kind)]
    if kind is not AlertKind.NEW and update > 1:
        parts.append(str(update))
    return stable_id(*parts, size=20)


@dataclass(frozen=True, slots=True)
class Source:
    """One member of a story, as alerts list it."""

    item_id: str
    source: str
    url: str
    title: str
    published: str
    wires: tuple[str, ...] = ()  # agencies the report credits


@dataclass(frozen=True, slots=True, kw_only=True)
class Addition:
    """A sentence a report adds to its story, with the names and figures that made it new
    (none for a claim made of new words)."""

    sentence: str
    names: tuple[str, ...] = ()
    figures: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"sentence": self.sentence, "names": list(self.names), "figures": list(self.figures)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Addition:
        return cls(
            sentence=str(data["sentence"]),
            names=tuple(data.get("names") or ()),
            figures=tuple(data.get("figures") or ()),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Matched:
    """An item placed in its story and matched by the rules: what retention, the desk and
    alerts read of it."""

    item: Item
    article: Article
    url: str  # canonical URL of the article
    placement: Placement
    matches: list[RuleMatch]
    wires: tuple[str, ...]  # agencies the article credits
    adds: tuple[Addition, ...] = ()  # what it adds to its story's earlier reports

    @property
    def rule_ids(self) -> list[str]:
        return [m.rule_id for m in self.matches]


def oldest_first(items: Iterable[Item]) -> list[Item]:
    """The items by report time, oldest first, undated ones last; ties broken by the item's
    id, so that the order a feed lists its entries in (most feeds: newest first; several
    dated to the same minute, or only to the day) changes nothing. The order the story tier
    meets a poll's new entries in: a rewrite then meets the story it joins."""
    return sorted(
        items, key=lambda item: (item.time.timestamp() if item.time else math.inf, item.id)
    )
