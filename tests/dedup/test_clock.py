"""One clock for stories: the index compares, windows and expires by the reports' own times,
so an archive replayed today, a backlog caught up and live polling of the same reports give
the same stories, and one badly dated report moves no other report's clock."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from monitor.config import Settings
from monitor.dedup.index import DedupIndex
from monitor.model import Article, Item, Outcome, oldest_first
from monitor.pipeline.replay import read_feeds
from monitor.store.connection import connect
from monitor.store.keys import Keys

from ..test_stories import FOLLOW_UP, OTHER_SHOOTING, SEEDS, SHOOTING, T0, TRAM

HOUR = timedelta(hours=1)
LOOK_BACK = (
    "A month after Sara Davidson, 19, was killed at a Maple Street home in Franklin, Andy "
    "Parish is awaiting trial. Johnson County Sheriff Doug Cox said on Thursday that the "
    "investigation is closed; the prosecutor will ask for a life sentence."
)


def reports() -> list[tuple[str, str, str, datetime]]:
    """(key, title, text, report time): two events in one city four days apart, a follow-up,
    a month-later look back (outside the window), an unrelated item, and the seed rewrites."""
    out = [
        ("shooting", "Franklin man shoots woman, then himself", SHOOTING, T0),
        ("tram", "Ghent approves tram line to the port", TRAM, T0 + HOUR),
        ("follow", "Parish charged with murder in Davidson death", FOLLOW_UP, T0 + 96 * HOUR),
        ("bar", "Man wounded in Franklin bar shooting", OTHER_SHOOTING, T0 + 98 * HOUR),
        ("month", "Parish case: a look back", LOOK_BACK, T0 + 720 * HOUR),
    ]
    for n, path in enumerate(SEEDS):
        title, _, body = path.read_text().partition("\n")
        out.append((f"seed{n}", title, body, T0 + 2 * HOUR + n * 20 * timedelta(minutes=1)))
    return out


def item(key: str, title: str, when: datetime, seen: datetime | None = None) -> Item:
    return Item(
        guid=f"urn:clock:{key}",
        url=f"https://example.org/{key}",
        title=title,
        source=f"{key}.example",
        feed="f",
        published=when,
        first_seen=seen or when,
    )


@pytest.fixture(params=["one server", "cluster"])
def indexes(request: pytest.FixtureRequest) -> Iterator[tuple[DedupIndex, DedupIndex]]:
    """Two fresh indexes side by side (key prefixes of their own) on one server or a cluster."""
    if request.param == "one server":
        client: redis.Redis = request.getfixturevalue("client")
        yield tuple(  # type: ignore[misc]
            DedupIndex.from_settings(client, Keys(prefix=p), Settings()) for p in ("a:", "b:")
        )
        return
    cluster = connect(request.getfixturevalue("cluster_url"))
    yield tuple(  # type: ignore[misc]
        DedupIndex.from_settings(cluster, Keys(prefix=p), Settings()) for p in ("a:", "b:")
    )
    cluster.close()


def partition(placed: dict[str, str]) -> set[frozenset[str]]:
    """The stories as sets of report keys, whatever their ids."""
    stories: dict[str, set[str]] = {}
    for key, story in placed.items():
        stories.setdefault(story, set()).add(key)
    return {frozenset(s) for s in stories.values()}


def test_an_archive_replayed_today_forms_the_stories_live_polling_formed(indexes) -> None:
    live, replayed = indexes
    today = time.time()
    as_live, as_replayed = {}, {}
    for key, title, text, when in reports():
        entry = item(key, title, when)
        as_live[key] = live.place(entry, Article(text=text, title=title), when.timestamp())
        as_replayed[key] = replayed.place(entry, Article(text=text, title=title), today)
    stories = partition({k: p.story_id for k, p in as_live.items()})
    assert stories == partition({k: p.story_id for k, p in as_replayed.items()})
    assert {"shooting", "follow"} <= next(s for s in stories if "shooting" in s)
    assert frozenset({"month"}) in stories  # a month later: outside the window, replayed too
    assert frozenset({"tram"}) in stories
    seeds = next(s for s in stories if "seed0" in s)
    assert seeds == {f"seed{n}" for n in range(len(SEEDS))}


def test_a_backlog_caught_up_newest_first_forms_the_same_stories(indexes) -> None:
    """Even without the oldest-first order of a poll, a report finds candidates placed before
    it that are newer than it: the window reaches both ways from its time."""
    oldest, newest = indexes
    later = datetime.now(UTC)
    first, last = {}, {}
    for key, title, text, when in reports():
        article = Article(text=text, title=title)
        first[key] = oldest.place(item(key, title, when), article, later.timestamp()).story_id
    for key, title, text, when in reversed(reports()):
        article = Article(text=text, title=title)
        last[key] = newest.place(item(key, title, when), article, later.timestamp()).story_id
    assert partition(first) == partition(last)


def test_a_report_dated_in_the_future_takes_the_time_it_was_seen(indexes, client) -> None:
    index, _ = indexes
    shooting = index.place(
        item("shooting", "x", T0), Article(text=SHOOTING, title="x"), T0.timestamp()
    )
    seen = T0 + HOUR
    wrong = datetime(2031, 1, 1, tzinfo=UTC)
    for entry in (item("tram", "t", wrong, seen), item("tram2", "t", wrong, None)):
        index.place(entry, Article(text=TRAM, title="t"), seen.timestamp())
        recorded = index.client.hget(index.keys.entry(entry.id), "time")
        assert float(recorded) == seen.timestamp()  # never later than when it was seen
    follow = T0 + 96 * HOUR
    joined = index.place(
        item("follow", "f", follow), Article(text=FOLLOW_UP, title="f"), follow.timestamp()
    )
    assert joined.outcome is Outcome.SAME_STORY and joined.story_id == shooting.story_id


def test_a_report_dated_1970_moves_no_other_reports_clock(indexes) -> None:
    """A report dated 1970 (a rewrite, or a copy: copies are found near their time too) is
    compared with its own window only, and the reports after it are placed as before."""
    index, _ = indexes
    at = T0.timestamp()
    shooting = index.place(item("shooting", "x", T0), Article(text=SHOOTING, title="x"), at)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    rewrite = Article(text=LOOK_BACK, title="Parish case: a look back")
    assert index.place(item("old", "x", epoch, T0), rewrite, at).story_id != shooting.story_id
    copy = index.place(item("copy", "x", epoch, T0), Article(text=SHOOTING, title="x"), at)
    assert copy.story_id != shooting.story_id
    follow = T0 + 96 * HOUR
    joined = index.place(
        item("follow", "f", follow), Article(text=FOLLOW_UP, title="f"), follow.timestamp()
    )
    assert joined.outcome is Outcome.SAME_STORY and joined.story_id == shooting.story_id


def test_a_feed_is_read_oldest_first_whatever_order_it_lists(tmp_path: Path) -> None:
    entries = [(f"e{n}", T0 + n * HOUR) for n in range(4)]

    def feed(order: list[tuple[str, datetime]]) -> str:
        body = "".join(
            f"<item><title>{k}</title><link>https://example.org/{k}</link>"
            f"<pubDate>{w.strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate></item>"
            for k, w in order
        )
        channel = f"<channel><title>f</title>{body}</channel>"
        return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'

    (tmp_path / "newest.xml").write_text(feed(entries[::-1]))
    (tmp_path / "oldest.xml").write_text(feed(entries))
    for name in ("newest.xml", "oldest.xml"):
        assert [i.title for i in read_feeds([tmp_path / name])] == ["e0", "e1", "e2", "e3"]
    undated = Item(guid="u", url="https://u.example", title="u", source="s", feed="f")
    tied = [item(f"t{n}", f"t{n}", T0) for n in range(5)]  # dated to the same minute
    assert oldest_first([undated, *tied]) == oldest_first([*tied[::-1], undated])
    assert oldest_first([undated, *tied])[-1] == undated  # undated last
