"""Top stories: the stories most reported lately, on the report clock (`monitor top`, the
desk's top page).

"Now" is the newest report time recorded (a replay's end, or the live stream's latest
report), or the time asked for (`as_of`). A story's rank is the number of distinct sources
that reported it in the last `hours`, each weighed by how recent its latest report there is:
1 for a report now, falling evenly to 1/2 for one at the start of the span. Its title, size
and sources are those the desk files (retained reports).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis

from monitor.dedup.activity import BUCKET, HOUR, Activity
from monitor.retained.cards import Desk
from monitor.store.keys import Keys


@dataclass(frozen=True, slots=True, kw_only=True)
class TopStory:
    id: str
    title: str
    size: int  # reports filed for it (the desk's)
    sources: list[str]  # every source of it, first reports first
    recent_sources: list[str]  # those of the last `hours`, newest first
    first: datetime | None  # its first and last report times
    last: datetime | None
    per_hour: list[int]  # reports per hour over the last `hours`, oldest first
    score: float
    rules: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "title": self.title,
            "size": self.size,
            "sources": self.sources,
            "recent_sources": self.recent_sources,
            "first": _iso(self.first),
            "last": _iso(self.last),
            "per_hour": self.per_hour,
            "score": round(self.score, 3),
            "rules": self.rules,
        }


@dataclass(frozen=True, slots=True)
class Top:
    now: datetime | None  # None: nothing recorded yet
    hours: int
    stories: list[TopStory]

    def as_dict(self) -> dict[str, object]:
        return {
            "now": _iso(self.now),
            "hours": self.hours,
            "stories": [s.as_dict() for s in self.stories],
        }


def _iso(when: datetime | None) -> str | None:
    return when.isoformat().replace("+00:00", "Z") if when else None


def top_stories(
    client: redis.Redis,
    keys: Keys,
    *,
    hours: int = 6,
    limit: int = 20,
    rule: str | None = None,
    as_of: datetime | None = None,
) -> Top:
    """The `limit` stories most reported in the `hours` before now (see the module)."""
    activity, desk = Activity(client, keys), Desk(client, keys, retention=0)
    newest = activity.newest()
    if as_of is None and newest is None:
        return Top(None, hours, [])
    now = as_of.timestamp() if as_of is not None else float(newest or 0)
    since = now - hours * HOUR
    span = hours * HOUR
    ranked = []
    for story_id, story in activity.stories(activity.active(since, 2**53)).items():
        newest_of = story.newest_by_source(since, now)
        if not newest_of:
            continue  # reported since `now` only (an as_of in the past)
        score = sum(
            1.0 - 0.5 * min(1.0, max(0.0, now - (bucket + 1) * BUCKET) / span)
            for bucket in newest_of.values()
        )
        recent = sorted(newest_of, key=lambda s: (-newest_of[s], s))
        ranked.append((score, story_id, story, recent))
    ranked.sort(key=lambda r: (-r[0], -(r[2].last or 0), r[1]))
    stories = []
    for score, story_id, story, recent in ranked:
        card = desk.story(story_id)
        rules = card.rules if card else []
        if rule is not None and rule not in rules:
            continue
        stories.append(
            TopStory(
                id=story_id,
                title=card.headline if card else "",
                size=card.size if card else sum(n for n, _ in story.buckets.values()),
                sources=card.sources if card else recent,
                recent_sources=recent,
                first=card.first if card else _when(story.first),
                last=card.last if card else _when(story.last),
                per_hour=[h.reports for h in story.hours(now, hours)],
                score=score,
                rules=rules,
            )
        )
        if len(stories) == limit:
            break
    return Top(datetime.fromtimestamp(now, UTC), hours, stories)


def _when(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None
