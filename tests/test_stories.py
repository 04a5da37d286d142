"""Same-story decisions: the signals, the fitted model, time as a signal, cold start."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import redis

from monitor.config import Settings
from monitor.dedup.fingerprint import PRIOR_DOCUMENTS, prior_df
from monitor.dedup.index import DedupIndex
from monitor.dedup.signals import (
    MODEL,
    SIGNALS,
    Candidate,
    Report,
    StoryModel,
    ages,
    figures,
    names,
    signals,
    streets,
)
from monitor.model import Article, Item, Outcome
from monitor.store.keys import Keys

from .conftest import FIXTURES

SEEDS = sorted((FIXTURES / "seeds").glob("*.txt"))
DAY = 86400.0
T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)

SHOOTING = (
    "Franklin police say 21-year-old Andy Parish shot Sara Davidson, 19, at a home on Maple "
    "Street in Franklin late Monday. Johnson County Sheriff Doug Cox said officers found "
    "Davidson dead and Parish wounded. Neighbors heard four shots around 10:30 p.m. Parish "
    "had argued with Davidson earlier that evening, Cox said."
)
FOLLOW_UP = (
    "Andy Parish, 21, was charged Friday with murder in the death of Sara Davidson, the "
    "Johnson County prosecutor said. Parish appeared in a Franklin courtroom by video. "
    "Davidson, 19, was shot at the Maple Street home on Monday night; Sheriff Doug Cox said "
    "the two had argued."
)
OTHER_SHOOTING = (
    "Franklin police are investigating a shooting outside a bar on Jefferson Avenue early "
    "Sunday that left Marcus Bell, 34, injured. Officers said a man in a dark hoodie fired "
    "three shots after an argument in the parking lot and fled on foot. Bell was taken to "
    "Methodist Hospital in stable condition, police said."
)
TRAM = (
    "The Ghent city council approved a new tram line to the port on Tuesday, after two years "
    "of hearings. Construction of the 6-kilometre line starts in autumn and should finish "
    "in 2029, alderman Filip Watteeuw said. The budget is 140 million euros, shared with the "
    "Flemish region."
)


@pytest.fixture
def index(client: redis.Redis) -> DedupIndex:
    return DedupIndex.from_settings(client, Keys(), Settings())


def place(index: DedupIndex, key: str, title: str, text: str, when: datetime):
    item = Item(
        guid=f"urn:s:{key}",
        url=f"https://example.org/{key}",
        title=title,
        source=f"{key}.example",
        feed="f",
        published=when,
        first_seen=when,
    )
    return index.place(item, Article(text=text, title=title), now=when.timestamp())


def test_names_and_figures_are_cheap_and_news_shaped() -> None:
    found = names(SHOOTING)
    assert {"andy parish", "parish", "sara davidson", "davidson", "franklin"} <= set(found)
    assert "johnson county sheriff doug cox" in found and "cox" in found  # and its last word
    assert "county" not in found and "police" not in found  # furniture words are not names
    assert found[0] in ("parish", "davidson", "franklin")  # the most frequent first
    # single digits and years left out; ages counted besides as ages, single digits too
    assert set(figures(SHOOTING)) == {"21", "19", "10:30", "21y", "19y"}
    assert figures("In 2024, 1,200 people; 3.5 percent") == ["1200", "3.5"]
    hurt = figures("Jayden Cole, 8, and a 4-year-old girl were hurt")
    assert ages(frozenset(hurt)) == {"8y", "4y"}
    assert streets(frozenset(names(SHOOTING))) == {"maple street"}


def test_the_shipped_model_fits_the_signals() -> None:
    data = json.loads(MODEL.read_text())
    assert data["signals"] == list(SIGNALS)
    model = StoryModel.load()
    assert 0 < model.threshold < 1
    with pytest.raises(ValueError, match="signals"):
        StoryModel((1.0,), 0.0)
    # more shared evidence never lowers the probability on the main text signals
    report = Report(T0.timestamp(), frozenset({"tram"}), frozenset(), frozenset(), frozenset())
    base = Candidate("s", size=1, oldest=report.time, newest=report.time, centroid=0.2, best=0.2)
    stronger = replace(base, centroid=0.5, best=0.5, title=0.4)
    assert model.probability(signals(report, stronger)) > model.probability(signals(report, base))
    shared = replace(base, names=frozenset({"maple street"}), figures=frozenset({"19y"}))
    named = replace(report, names=frozenset({"maple street"}), figures=frozenset({"19y"}))
    assert model.probability(signals(named, shared)) > model.probability(signals(report, base))
    # a closer rival story makes joining this one less likely
    rivalled = replace(base, rival=0.19)
    assert model.probability(signals(report, rivalled)) < model.probability(signals(report, base))


def test_the_same_hour_alone_never_joins() -> None:
    """Reports of one day share vocabulary (a roundup): being at the same time, with words
    in common that any news of that day has, is not the same story."""
    model = StoryModel.load()
    report = Report(T0.timestamp(), frozenset({"senate"}), frozenset(), frozenset(), frozenset())
    for cosine in (0.0, 0.1, 0.15):
        same_time = Candidate(
            "s", size=3, oldest=report.time, newest=report.time, centroid=cosine, best=cosine
        )
        assert model.probability(signals(report, same_time)) < model.threshold


def test_the_background_prior_weighs_common_words_down() -> None:
    assert 0 < prior_df("use") <= PRIOR_DOCUMENTS  # common in the background feeds
    assert prior_df("zxqvbrandnewname") == 0.0


def test_a_follow_up_days_later_joins_and_another_event_does_not(index: DedupIndex) -> None:
    first = place(index, "a", "Franklin man shoots woman, then himself", SHOOTING, T0)
    assert first.outcome is Outcome.NEW_STORY
    later = T0 + timedelta(days=4)  # beyond the old 72 h hard cut
    follow = place(index, "b", "Parish charged with murder in Davidson death", FOLLOW_UP, later)
    assert follow.outcome is Outcome.SAME_STORY and follow.story_id == first.story_id
    other = place(
        index,
        "c",
        "Man wounded in Franklin bar shooting",
        OTHER_SHOOTING,
        later + timedelta(hours=2),
    )
    assert other.story_id != first.story_id  # same city, same topic: a different event
    weeks = T0 + timedelta(days=30)  # the story went quiet for longer than the window
    again = place(index, "d", "Parish case: a look back", FOLLOW_UP + " One month on.", weeks)
    assert again.story_id != first.story_id


def test_at_cold_start_an_unrelated_second_item_starts_its_own_story(index: DedupIndex) -> None:
    texts = [p.read_text() for p in SEEDS]
    title, _, body = texts[0].partition("\n")
    first = place(index, "seed0", title, body, T0)
    assert first.outcome is Outcome.NEW_STORY
    tram = place(index, "tram", "Ghent approves tram line to the port", TRAM, T0)
    assert tram.outcome is Outcome.NEW_STORY  # two documents in the index: no false join
    title, _, body = texts[1].partition("\n")
    rewrite = place(index, "seed1", title, body, T0 + timedelta(minutes=20))
    assert rewrite.story_id == first.story_id


def test_stories_are_summarised_for_later_decisions(index: DedupIndex, client) -> None:
    texts = [p.read_text() for p in SEEDS]
    placed = []
    for n, text in enumerate(texts):
        title, _, body = text.partition("\n")
        placed.append(place(index, f"seed{n}", title, body, T0 + timedelta(hours=n)))
    (story,) = {p.story_id for p in placed}  # the seed replay: one story
    summary = client.hgetall(Keys().story_summary(story))
    assert int(summary["size"]) == len(texts)
    assert float(summary["oldest"]) == T0.timestamp()
    assert float(summary["newest"]) == (T0 + timedelta(hours=len(texts) - 1)).timestamp()
    assert "putin" in json.loads(summary["centroid"]) and "putin" in summary["names"].split("|")


def test_a_placement_runs_two_scripts_and_survives_redis_losing_them(
    index: DedupIndex, client: redis.Redis
) -> None:
    first = place(index, "a", "Shooting on Maple Street", SHOOTING, T0)
    assert first.outcome is Outcome.NEW_STORY
    client.script_flush()  # as after a restart without persistence of scripts
    later = place(index, "b", "Parish charged with murder", FOLLOW_UP, T0 + timedelta(days=4))
    assert later.outcome is Outcome.SAME_STORY and later.story_id == first.story_id
    # Scripts loaded now: deciding and recording an item sends no SCRIPT EXISTS/LOAD, and
    # runs two scripts: the look's read of buckets and postings (lookups.lua), the record.
    before = client.info("commandstats")
    place(index, "c", "Ghent approves a tram line", TRAM, T0 + timedelta(days=5))
    after = client.info("commandstats")
    calls = {k: after[k]["calls"] - before.get(k, {}).get("calls", 0) for k in after}
    assert not calls.get("cmdstat_script") and not calls.get("cmdstat_script|exists")
    assert after["cmdstat_evalsha"]["calls"] - before["cmdstat_evalsha"]["calls"] == 2
