"""The dedup index's contract, the same on one server and on a Redis Cluster (three masters):
an exact copy, a near-duplicate, a same-story report, a new story, an item seen again, a
story's members, and a re-processed item placed as before."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from monitor.config import Settings
from monitor.dedup.index import DedupIndex
from monitor.dedup.server import ServerStore
from monitor.dedup.spread import SpreadStore
from monitor.model import Article, Item, Outcome, Placement
from monitor.store.connection import connect
from monitor.store.keys import Keys

from ..test_stories import FOLLOW_UP, OTHER_SHOOTING, SHOOTING, T0, TRAM

COPY = (
    "FRANKLIN, Ind. (AP) — "
    + SHOOTING.replace("late Monday", "late on Monday")
    + " Copyright 2026 The Associated Press."
)


@pytest.fixture(params=["one server", "cluster"])
def index(request: pytest.FixtureRequest) -> Iterator[DedupIndex]:
    """A fresh index on the session's server (`client`) or its cluster (`cluster_url`)."""
    if request.param == "one server":
        client = request.getfixturevalue("client")
        yield DedupIndex.from_settings(client, Keys(), Settings())
        return
    client = connect(request.getfixturevalue("cluster_url"))
    yield DedupIndex.from_settings(client, Keys(), Settings())
    client.close()


def item(key: str, when: datetime, *, url: str = "", source: str = "") -> Item:
    return Item(
        guid=f"urn:s:{key}",
        url=url or f"https://example.org/{key}",
        title=key,
        source=source or f"{key}.example",
        feed="f",
        published=when,
        first_seen=when,
    )


def place(index: DedupIndex, entry: Item, title: str, text: str) -> Placement:
    assert entry.first_seen is not None
    return index.place(entry, Article(text=text, title=title), now=entry.first_seen.timestamp())


def test_the_index_picks_the_store_of_its_client(index: DedupIndex, request) -> None:
    cluster = request.node.callspec.params["index"] == "cluster"
    assert isinstance(index.store, SpreadStore if cluster else ServerStore)


def test_a_new_story_and_an_unrelated_one(index: DedupIndex) -> None:
    first = place(index, item("a", T0), "Franklin shooting", SHOOTING)
    assert first.outcome is Outcome.NEW_STORY and first.duplicate_of is None
    tram = place(index, item("tram", T0), "Ghent approves tram line", TRAM)
    assert tram.outcome is Outcome.NEW_STORY and tram.story_id != first.story_id


def test_a_follow_up_joins_its_story_and_another_event_does_not(index: DedupIndex) -> None:
    first = place(index, item("a", T0), "Franklin man shoots woman, then himself", SHOOTING)
    later = T0 + timedelta(days=4)
    follow = place(index, item("b", later), "Parish charged with murder", FOLLOW_UP)
    assert follow.outcome is Outcome.SAME_STORY and follow.story_id == first.story_id
    assert 0.5 <= follow.similarity <= 1
    other = place(
        index, item("c", later + timedelta(hours=2)), "Man wounded in bar", OTHER_SHOOTING
    )
    assert other.outcome is Outcome.NEW_STORY and other.story_id != first.story_id


def test_an_exact_copy_is_the_same_item(index: DedupIndex) -> None:
    first = place(index, item("a", T0), "Franklin shooting", SHOOTING)
    url = "https://example.org/a"
    again = item("a-syndicated", T0 + timedelta(minutes=5), url=url, source="other.example")
    copy = place(index, again, "Franklin shooting", SHOOTING)
    assert copy.outcome is Outcome.SAME_ITEM
    assert (copy.story_id, copy.duplicate_of) == (first.story_id, item("a", T0).id)


def test_a_wire_copy_is_a_near_duplicate_of_the_original(index: DedupIndex) -> None:
    first = place(index, item("a", T0), "Franklin shooting", SHOOTING)
    copy = place(index, item("wire", T0 + timedelta(minutes=30)), "UPDATE: shooting", COPY)
    assert copy.outcome is Outcome.NEAR_DUPLICATE
    assert (copy.story_id, copy.duplicate_of) == (first.story_id, item("a", T0).id)
    assert copy.similarity >= 0.5


def test_an_item_placed_again_is_seen_with_its_first_placement(index: DedupIndex) -> None:
    entries = [
        (item("a", T0), "Franklin shooting", SHOOTING),
        (item("wire", T0 + timedelta(minutes=30)), "UPDATE: shooting", COPY),
        (item("b", T0 + timedelta(days=4)), "Parish charged", FOLLOW_UP),
    ]
    first = [place(index, *entry) for entry in entries]
    # re-processed (a re-delivery, a replay): the same placement, nothing written twice
    again = [place(index, *entry) for entry in entries]
    for before, after in zip(first, again, strict=True):
        assert after.outcome is Outcome.SEEN
        assert after.first_outcome is before.outcome
        assert (after.story_id, after.duplicate_of) == (before.story_id, before.duplicate_of)
    size, sources = index.story(first[0].story_id)
    assert size == 3 and len(sources) == 3


def test_a_story_has_its_members_oldest_first(index: DedupIndex) -> None:
    first = place(index, item("a", T0), "Franklin shooting", SHOOTING)
    place(index, item("wire", T0 + timedelta(minutes=30)), "UPDATE: shooting", COPY)
    place(index, item("b", T0 + timedelta(days=4)), "Parish charged", FOLLOW_UP)
    size, sources = index.story(first.story_id)
    assert size == 3
    assert [s.item_id for s in sources] == [item(k, T0).id for k in ("a", "wire", "b")]
    assert [s.source for s in sources] == ["a.example", "wire.example", "b.example"]
    assert index.story(first.story_id, limit=1)[0] == 3
    assert len(index.story(first.story_id, limit=1)[1]) == 1
    assert index.originals() >= 2
