"""A batch placed at once gives what one-by-one processing gives: the same outcomes, stories,
copies and alerts (dedup/batch.py, Pipeline.process_batch), on a real Redis."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
import redis

from monitor.config import AlertSettings, Settings
from monitor.ingest.fetch import LocalFetcher
from monitor.model import Item, Outcome
from monitor.pipeline import runtime
from monitor.pipeline.process import Pipeline, Processed
from monitor.rules.model import Rule, RuleSet
from monitor.rules.query import parse

from .conftest import FIXTURES, ROOT

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
SYLLABLES = ("ka", "lo", "mi", "ra", "te", "vu", "si", "no", "de", "pa", "zu", "ri")
VERBS = ("said", "announced", "reported", "confirmed", "denied", "warned", "added")
NOUNS = ("council", "police", "court", "ministry", "company", "union", "hospital", "airport")


def word(rng: random.Random, parts: int = 3) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(parts))


def corpus(seed: int = 7, events: int = 14) -> list[tuple[str, str, str]]:
    """(key, title, text) reports of generated events: each event's rewrites (its names,
    place and figures in new sentences), copies of some and trimmed copies, in random order;
    and the seed articles (one real story, rewritten by several outlets)."""
    rng = random.Random(seed)
    reports = []
    for e in range(events):
        names = [word(rng).capitalize() + " " + word(rng).capitalize() for _ in range(3)]
        place, noun = word(rng).capitalize(), rng.choice(NOUNS)
        figures = [str(rng.randint(10, 900)) for _ in range(2)]
        own = [word(rng, 2) for _ in range(12)]  # the event's own vocabulary
        for r in range(rng.randint(1, 4)):
            sentences = [
                f"{rng.choice(names)} {rng.choice(VERBS)} the {noun} in {place} "
                f"{' '.join(rng.sample(own, 4))} {rng.choice(figures)} {word(rng, 2)}."
                for _ in range(rng.randint(5, 9))
            ]
            text = " ".join(sentences)
            title = f"{place} {noun}: {names[0]} {rng.choice(VERBS)} {rng.choice(own)}"
            reports.append((f"e{e}r{r}", title, text))
            if rng.random() < 0.5:  # a copy by another outlet
                reports.append((f"e{e}r{r}c", title, text))
            if rng.random() < 0.4:  # a trimmed copy
                reports.append((f"e{e}r{r}t", title, text.rsplit(". ", 1)[0] + "."))
    for path in sorted((FIXTURES / "seeds").glob("*.txt")):
        title, _, text = path.read_text(encoding="utf-8").partition("\n")
        reports.append((path.stem, title.strip(), text.strip()))
    rng.shuffle(reports)
    return reports


def items() -> list[Item]:
    made = []
    for n, (key, title, text) in enumerate(corpus()):
        when = T0 + timedelta(minutes=7 * n)
        made.append(
            Item(
                guid=f"urn:t:{key}",
                url=f"https://{key}.example/a",
                title=title,
                content=f"<p>{text}</p>",
                source=f"{key}.example",
                feed="f",
                published=when,
                first_seen=when,
            )
        )
    return made


def pipeline(client: redis.Redis, prefix: str) -> Pipeline:
    queries = ["police OR court", "council AND said", '"the company"', "ministry NOT denied"]
    rules = RuleSet(
        tuple(
            Rule(id=f"r{n}", name=f"rule {n}", query=q, node=parse(q))
            for n, q in enumerate(queries)
        ),
        {},
    )
    settings = Settings(prefix=prefix, alerts=AlertSettings(max_age=0))  # any date alerts
    return runtime.pipeline(client, settings, rules, LocalFetcher(ROOT))


def summary(results: list[Processed]) -> list[tuple]:
    return [
        (
            r.item.id,
            str(r.placement.outcome),
            r.placement.story_id,
            r.placement.duplicate_of,
            sorted(m.rule_id for m in r.matches),
            r.alerts,
        )
        for r in results
    ]


def stream(client: redis.Redis, prefix: str) -> list[tuple]:
    """The alerts as published: id, kind, story, size, members."""
    found = []
    for _, fields in client.xrange(f"{prefix}alerts"):
        alert = json.loads(fields["alert"])
        story = alert["story"]
        found.append(
            (
                alert["id"],
                alert["kind"],
                story["id"],
                story["size"],
                [s["url"] for s in story["sources"]],
            )
        )
    return found


@pytest.mark.parametrize("size", [2, 8, 25])
def test_a_batch_places_as_one_by_one(client: redis.Redis, size: int) -> None:
    reports = items()
    one = pipeline(client, "one:")
    alone = [one.process(item) for item in reports]
    batched = pipeline(client, "batch:")
    together = [
        r
        for start in range(0, len(reports), size)
        for r in batched.process_batch([(i, None) for i in reports[start : start + size]])
    ]
    assert summary(together) == summary(alone)
    assert stream(client, "batch:") == stream(client, "one:")
    outcomes = {str(r.placement.outcome) for r in together}
    assert {"new_story", "same_story", "near_duplicate"} <= outcomes  # the corpus tests each
    assert len({r.placement.story_id for r in together}) < len(together) / 2
    assert sum(len(r.alerts) for r in together) >= 8
    assert batched.rounds.rounds < len(reports) or size == 2  # fewer round trips
    # Delivered again (a crash before the ack): every report seen, nothing published again.
    again = batched.process_batch([(i, None) for i in reports[:size]])
    assert {r.placement.outcome for r in again} == {Outcome.SEEN}
    assert not any(r.alerts for r in again)
    assert [r.placement.story_id for r in again] == [r.placement.story_id for r in together[:size]]
