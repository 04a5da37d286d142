"""Story activity on the report clock: how many reports and distinct sources a story got in
each stretch of report time, and the stream's background of reports per active story-hour.

Written by the dedup record (activity.lua, included by record.lua and story.lua) as a report
joins its story; read here. Reading is pure over what Redis holds (`StoryActivity`), so the
breaking rule (`monitor.dedup.breaking`) and `monitor top` are functions of report times
only: a replay, a backlog and live polling give the same activity.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis

from monitor.model import Outcome
from monitor.store.keys import Keys

BUCKET = 600  # seconds of report time per activity bucket (six to the hour)
SOURCES_KEPT = 24  # distinct sources counted per bucket (more are still counted as reports)
HOUR = 3600
COUNTED = (Outcome.NEW_STORY, Outcome.SAME_STORY, Outcome.NEAR_DUPLICATE)


def counts(outcome: Outcome) -> bool:
    """Whether a placement is a report of its story for activity: an original or a copy
    published by an outlet (not the same entry again, nor another entry of one page)."""
    return outcome in COUNTED


def activity_args(source: str, window: int) -> dict[str, Any]:
    """The activity arguments of record.lua and story.lua for a report of `source`."""
    return {
        "source": source or "?",
        "bucket": BUCKET,
        "buckets_kept": max(1, window // BUCKET),
        "sources_kept": SOURCES_KEPT,
    }


@dataclass(frozen=True, slots=True)
class Hour:
    """One hour of a story's activity: its start (Unix seconds), reports, distinct sources."""

    start: int
    reports: int
    sources: int


@dataclass(frozen=True, slots=True)
class StoryActivity:
    """A story's activity as stored: bucket number -> (reports, its distinct sources)."""

    buckets: dict[int, tuple[int, frozenset[str]]] = field(default_factory=dict)

    @classmethod
    def parse(cls, stored: dict[str, str]) -> StoryActivity:
        """From the activity hash's fields (HGETALL)."""
        buckets: dict[int, tuple[int, frozenset[str]]] = {}
        for name, value in stored.items():
            number, _, kind = name.partition(":")
            if not number.lstrip("-").isdigit():
                continue  # n, f: the bounds
            count, sources = buckets.get(int(number), (0, frozenset()))
            if kind == "s":
                sources = frozenset(s for s in value.split("|") if s)
            else:
                count = int(value)
            buckets[int(number)] = (count, sources)
        return cls(buckets)

    def between(self, since: float, until: float) -> tuple[int, frozenset[str]]:
        """Reports and distinct sources in the buckets of (since, until] (by bucket: a
        bucket counts when its start lies in the span)."""
        return self._buckets(_bucket(since) + 1, _bucket(until))

    def _buckets(self, low: int, high: int) -> tuple[int, frozenset[str]]:
        """Reports and distinct sources of the buckets numbered low to high."""
        reports, sources = 0, set[str]()
        for number, (count, names) in self.buckets.items():
            if low <= number <= high:
                reports += count
                sources |= names
        return reports, frozenset(sources)

    @property
    def first(self) -> float | None:
        """The start of its oldest bucket kept."""
        return min(self.buckets) * BUCKET if self.buckets else None

    @property
    def last(self) -> float | None:
        return max(self.buckets) * BUCKET if self.buckets else None

    def hours(self, now: float, hours: int) -> list[Hour]:
        """The last `hours` hours up to `now`'s hour, oldest first."""
        top = int(now // HOUR)
        out = []
        for hour in range(top - hours + 1, top + 1):
            per_hour = HOUR // BUCKET
            reports, sources = self._buckets(hour * per_hour, (hour + 1) * per_hour - 1)
            out.append(Hour(hour * HOUR, reports, len(sources)))
        return out

    def newest_by_source(self, since: float, until: float) -> dict[str, int]:
        """Each source of (since, until] -> the number of its newest bucket there."""
        low, high = _bucket(since) + 1, _bucket(until)
        newest: dict[str, int] = {}
        for number, (_, names) in self.buckets.items():
            if low <= number <= high:
                for name in names:
                    newest[name] = max(newest.get(name, number), number)
        return newest


def _bucket(when: float) -> int:
    return math.floor(when / BUCKET)


@dataclass(frozen=True, slots=True)
class Background:
    """The stream's activity over a span of report time: reports, and story-hours (an hour
    of one story with at least one report)."""

    reports: int
    story_hours: int

    @property
    def per_story_hour(self) -> float:
        """Reports in an active story's hour, on average (0: nothing counted)."""
        return self.reports / self.story_hours if self.story_hours else 0.0


class Activity:
    """Reads the activity the dedup record keeps (Keys.story_activity, activity_day,
    active_stories)."""

    def __init__(self, client: redis.Redis, keys: Keys, *, window: int = 72 * HOUR) -> None:
        self.client = client
        self.keys = keys
        self.window = window  # the dedup window: what the stream's counts live (s)

    def story(self, story_id: str) -> StoryActivity:
        return StoryActivity.parse(self.client.hgetall(self.keys.story_activity(story_id)))

    def stories(self, story_ids: Iterable[str]) -> dict[str, StoryActivity]:
        ids = list(story_ids)
        pipe = self.client.pipeline(transaction=False)
        for story in ids:
            pipe.hgetall(self.keys.story_activity(story))
        return {s: StoryActivity.parse(v) for s, v in zip(ids, pipe.execute(), strict=True)}

    def newest(self) -> float | None:
        """The newest report time recorded: the stream's "now" (None: nothing recorded)."""
        top = self.client.zrevrange(self.keys.active_stories, 0, 0, withscores=True)
        return float(top[0][1]) if top else None

    def active(self, since: float, until: float) -> list[str]:
        """The stories whose newest report lies in [since, until]."""
        return list(self.client.zrangebyscore(self.keys.active_stories, since, until))

    def background(self, since: float, until: float) -> Background:
        """The stream's reports and story-hours in the whole hours of [since, until)."""
        hours = range(math.floor(since / HOUR), math.floor(until / HOUR))
        days: dict[int, list[int]] = {}
        for hour in hours:
            days.setdefault(hour // 24, []).append(hour)
        pipe = self.client.pipeline(transaction=False)
        for day, members in days.items():
            names = [f"{kind}{h}" for h in members for kind in ("r", "s")]
            pipe.hmget(self.keys.activity_day(day), names)
        reports = story_hours = 0
        for values in pipe.execute() if days else []:
            for i, value in enumerate(values):
                if i % 2:
                    story_hours += int(value or 0)
                else:
                    reports += int(value or 0)
        return Background(reports, story_hours)

    def count_stream(self, pipe: Any, story_id: str, when: float, *, first_of_hour: bool) -> None:
        """Queue the stream's counts of one report on `pipe` (a cluster: record.lua counts
        them itself on one server), as activity.lua's count_stream does."""
        hour = math.floor(when / HOUR)
        day = self.keys.activity_day(hour // 24)
        ttl = self.window
        pipe.hincrby(day, f"r{hour}", 1)
        pipe.zadd(self.keys.active_stories, {story_id: when}, gt=True)
        if first_of_hour:
            pipe.hincrby(day, f"s{hour}", 1)
            pipe.zremrangebyscore(self.keys.active_stories, "-inf", f"({when - ttl}")
            pipe.expire(self.keys.active_stories, ttl)
            pipe.expire(day, ttl)
