"""Story activity on the report clock (dedup/activity.lua, monitor/dedup/activity.py): kept
beside the story's summary as reports join it, bounded, the same on one server and on a
cluster, and the same whatever order the reports come in."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
import redis

from monitor.config import Settings
from monitor.dedup.activity import BUCKET, SOURCES_KEPT, Activity
from monitor.dedup.index import DedupIndex
from monitor.model import Article, Item
from monitor.store.connection import connect
from monitor.store.keys import Keys

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
QUAKE = (
    "A magnitude 6.1 earthquake struck near Izmir on Tuesday morning, the Turkish disaster "
    "agency AFAD said. Buildings swayed in the city centre and residents ran into the streets. "
    "Governor Suleyman Elban said two buildings collapsed in the Bayrakli district and rescue "
    "teams were searching the rubble. The quake was felt on the Greek island of Samos."
)


def report(n: int, source: str, when: datetime, text: str = QUAKE) -> tuple[Item, Article]:
    # Each report its own rewrite: a different lead sentence keeps it from being a copy.
    lead = f"Report {n} from {source}: residents of Izmir described the shaking. "
    item = Item(
        guid=f"urn:a:{n}",
        url=f"https://{source}/{n}",
        title=f"Earthquake hits Izmir ({n})",
        source=source,
        feed=source,
        published=when,
        first_seen=when,
    )
    return item, Article(text=lead + text, title=item.title)


def place_all(index: DedupIndex, reports: list[tuple[Item, Article]]) -> set[str]:
    stories = set()
    for item, article in reports:
        assert item.time is not None
        stories.add(index.place(item, article, now=item.time.timestamp()).story_id)
    return stories


def burst() -> list[tuple[Item, Article]]:
    """Three reports spread over a day, then six in half an hour from five outlets (one of
    them twice)."""
    spread = [report(n, f"early{n}.example", T0 + timedelta(hours=8 * n)) for n in range(3)]
    outlets = ["a.example", "b.example", "c.example", "d.example", "e.example", "a.example"]
    rush = [
        report(10 + n, outlet, T0 + timedelta(hours=30, minutes=5 * n))
        for n, outlet in enumerate(outlets)
    ]
    return spread + rush


def check_activity(client: redis.Redis, index: DedupIndex) -> None:
    stories = place_all(index, burst())
    assert len(stories) == 1
    (story,) = stories
    activity = Activity(client, Keys())
    now = (T0 + timedelta(hours=30, minutes=25)).timestamp()
    assert activity.newest() == now
    assert activity.active(now - 3600, now) == [story]
    got = activity.story(story)
    reports, sources = got.between(now - 3600, now)
    assert reports == 6 and sources == {f"{c}.example" for c in "abcde"}
    hours = got.hours(now, 31)
    assert [h.reports for h in hours if h.reports] == [1, 1, 1, 6]
    assert hours[-1].sources == 5 and sum(h.reports for h in hours) == 9
    # The stream: 9 reports in 4 story-hours.
    background = activity.background(T0.timestamp(), now + 3600)
    assert (background.reports, background.story_hours) == (9, 4)


def test_a_story_s_activity_counts_reports_and_distinct_sources_by_report_time(
    client: redis.Redis,
) -> None:
    check_activity(client, DedupIndex.from_settings(client, Keys(), Settings()))
    # Beside the story's summary, expiring with it.
    (story,) = Activity(client, Keys()).active(0, 2e9)
    ttl = client.ttl(Keys().story_activity(story))
    assert 0 < ttl <= Settings().window_seconds
    assert abs(ttl - client.ttl(Keys().story_summary(story))) <= 1


def test_on_a_cluster_the_same(cluster_url: str) -> None:
    client = connect(cluster_url)
    check_activity(client, DedupIndex.from_settings(client, Keys(), Settings()))


def test_the_order_reports_arrive_in_changes_no_activity(client: redis.Redis) -> None:
    index = DedupIndex.from_settings(client, Keys(), Settings())
    reports = burst()
    random.Random(7).shuffle(reports)
    place_all(index, reports)
    (story,) = Activity(client, Keys()).active(0, 2e9)
    got = Activity(client, Keys()).story(story)
    now = (T0 + timedelta(hours=30, minutes=25)).timestamp()
    assert [h.reports for h in got.hours(now, 31) if h.reports] == [1, 1, 1, 6]


def test_a_re_delivered_report_is_counted_once(client: redis.Redis) -> None:
    index = DedupIndex.from_settings(client, Keys(), Settings())
    reports = burst()
    place_all(index, reports + reports[-3:])
    (story,) = Activity(client, Keys()).active(0, 2e9)
    assert sum(n for n, _ in Activity(client, Keys()).story(story).buckets.values()) == 9


def test_activity_is_bounded_in_buckets_and_sources(client: redis.Redis) -> None:
    """A story reported for longer than the window keeps only the window's buckets, and a
    bucket at most SOURCES_KEPT sources (every report still counted)."""
    window = 6 * 3600
    settings = Settings()
    index = DedupIndex(
        client,
        Keys(),
        window=window,
        near_threshold=settings.near_duplicate_threshold,
        story_threshold=settings.story_threshold,
    )
    reports = [report(n, f"s{n}.example", T0 + timedelta(minutes=40 * n)) for n in range(30)]
    reports += [report(100 + n, f"m{n}.example", T0 + timedelta(hours=20)) for n in range(30)]
    assert len(place_all(index, reports)) == 1
    (story,) = Activity(client, Keys()).active(0, 2e9)
    stored = client.hgetall(Keys().story_activity(story))
    newest = int(stored["n"])
    numbers = [int(k.partition(":")[0]) for k in stored if k[0].isdigit()]
    assert min(numbers) > newest - window // BUCKET and newest == max(numbers)
    last = stored[f"{newest}:s"].strip("|").split("|")
    assert len(last) == SOURCES_KEPT and stored[str(newest)] == "30"
    # A report older than the window behind the newest is not counted.
    place_all(index, [report(500, "late.example", T0)])
    assert client.hgetall(Keys().story_activity(story)) == stored


@pytest.mark.parametrize("hours", [1, 24])
def test_the_background_is_reports_per_active_story_hour(client: redis.Redis, hours: int) -> None:
    activity = Activity(client, Keys())
    assert activity.background(0, hours * 3600).per_story_hour == 0.0
    assert activity.newest() is None and activity.active(0, 2e9) == []
