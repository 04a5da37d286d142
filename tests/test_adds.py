"""What a report adds to its story: the new paragraph of an updated wire copy and nothing
else, nothing for a wire copy or for a late, older report the others already covered; on
update alerts (the schema), on the desk's story page and in `monitor replay --json`."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import redis

from monitor.config import Settings
from monitor.ingest.fetch import LocalFetcher
from monitor.model import Item, Outcome
from monitor.pipeline import runtime
from monitor.pipeline.process import article_of
from monitor.pipeline.replay import read_feeds
from monitor.retained.adds import StoryFacts, additions, facts_of, sentences
from monitor.rules import RuleSet, ad_hoc_rule
from monitor.store.keys import Keys

from .conftest import ROOT, RULES, SAMPLE_FEEDS
from .test_cli import monitor

SCHEMA = json.loads((ROOT / "docs" / "alert.schema.json").read_text())
UPDATE = (
    "The death toll rose to 47 on Thursday, officials in Pyongyang said. "
    "Police named the driver as Viktor Kessler, 34, a Russian embassy employee."
)


def seed() -> list[tuple[Item, str]]:
    """The seed replay's reports with their texts, in feed order."""
    items = list(read_feeds([SAMPLE_FEEDS]))
    fetcher = LocalFetcher(ROOT)
    return [(item, article_of(item, fetcher)[0].text) for item in items]


def wire_copy(text: str) -> str:
    """The same text republished: a dateline, a word changed, the tail cut, boilerplate."""
    kept = sentences(text)[:-1]
    body = " ".join(kept).replace(" said ", " stated ", 1)
    return "LONDON, June 19 (Reuters) - " + body + " Copyright 2024 The Associated Press."


def test_an_appended_paragraph_is_what_an_updated_copy_adds() -> None:
    (item, text), *_ = seed()
    known = facts_of(item.title, text)
    adds = additions(text + "\n\n" + UPDATE, known)
    assert [a.sentence for a in adds] == sentences(UPDATE)
    assert adds[0].figures == ("47",) and adds[1].names == ("Viktor Kessler",)
    assert adds[1].figures == ("34",)


def test_a_wire_copy_adds_nothing() -> None:
    for item, text in seed():
        assert additions(wire_copy(text), facts_of(item.title, text)) == []


def test_other_outlets_reports_add_their_own_sentences() -> None:
    (item, text), *others = seed()
    known = facts_of(item.title, text)
    for _, other in others:
        adds = additions(other, known)
        assert adds and all(a.sentence in other for a in adds)


def test_a_late_older_report_adds_nothing_the_later_ones_said(client: redis.Redis) -> None:
    (first, text), (second, other), *_ = seed()
    facts = StoryFacts(client, Keys(), retention=3600)
    assert facts.measure("s1", first.title, text) == []  # a story's first report
    assert facts.measure("s1", second.title, other)  # a rewrite with its own sentences
    # Processed last but published first: it says what both said, and one thing more.
    older = sentences(other)[1] + " " + sentences(text)[2] + "\n" + UPDATE
    adds = facts.measure("s1", "An early report", older)
    assert [a.sentence for a in adds] == sentences(UPDATE)
    assert facts.measure("s1", "Again", older) == []  # the same report again: nothing new
    assert 0 < client.ttl(Keys().story_facts("s1")) <= 3600


def test_adds_reach_alerts_the_desk_and_replay(client: redis.Redis, redis_url: str) -> None:
    rules = RuleSet((ad_hoc_rule("Putin AND Kim", {}, "putin-kim"),), {})
    settings = Settings(redis_url=redis_url, update_quiet_minutes=0)
    pipeline = runtime.pipeline(client, settings, rules, LocalFetcher(ROOT))
    (item, text), *_ = seed()
    now = datetime.now(UTC)
    original = dataclasses.replace(
        item, content=text, published=now - timedelta(hours=2), first_seen=now, baseline=False
    )
    first = pipeline.process(original)
    assert first.adds == () and first.alerts
    copy = dataclasses.replace(
        original,
        guid="urn:copy",
        url="https://wire.example/copy",
        source="Wire",
        content=wire_copy(text),
        published=now - timedelta(hours=1),
    )
    assert pipeline.process(copy).adds == ()
    updated = dataclasses.replace(
        copy, guid="urn:updated", url="https://wire.example/updated", content=text + "\n" + UPDATE
    )
    done = pipeline.process(updated)
    assert done.placement.outcome is Outcome.NEAR_DUPLICATE
    assert [a.sentence for a in done.adds] == sentences(UPDATE)

    (other, other_text) = seed()[1]  # another outlet's report of the story
    rewrite = dataclasses.replace(
        other,
        content=other_text,
        published=now - timedelta(minutes=30),
        first_seen=now,
        baseline=False,
    )
    alerted = pipeline.process(rewrite)
    assert alerted.placement.outcome is Outcome.SAME_STORY and alerted.alerts
    alerts = [json.loads(f["alert"]) for _, f in client.xrange(Keys().alerts)]
    for alert in alerts:
        jsonschema.validate(alert, SCHEMA)
    update = alerts[-1]
    assert update["kind"] == "update" and update["adds"]
    assert update["adds"] == [a.to_json() for a in alerted.adds]
    assert all(a["sentence"] in other_text for a in update["adds"])
    assert all("adds" not in a for a in alerts if a["kind"] == "new")

    card = pipeline.desk.story(done.placement.story_id) if pipeline.desk else None
    assert card is not None
    by_item = {r.item: r for r in card.reports}
    assert [a.sentence for a in by_item[updated.id].adds] == sentences(UPDATE)
    assert by_item[copy.id].adds == ()


def test_replay_prints_adds(client: redis.Redis, redis_url: str, tmp_path: Path) -> None:
    done = monitor(
        "replay",
        "--json",
        "--rules",
        str(RULES),
        str(SAMPLE_FEEDS),
        cwd=tmp_path,
        redis_url=redis_url,
    )
    assert done.returncode == 0, done.stderr
    *rows, _ = [json.loads(line) for line in done.stdout.splitlines()]
    assert all(isinstance(r["adds"], list) for r in rows)
    assert rows[0]["adds"] == [] and any(r["adds"] for r in rows[1:])


def test_a_when_new_rule_updates_only_for_reports_that_add_something(
    client: redis.Redis, redis_url: str
) -> None:
    rules = RuleSet(
        (
            ad_hoc_rule("Putin AND Kim", {}, "always"),
            dataclasses.replace(ad_hoc_rule("Putin AND Kim", {}, "quiet"), updates="when-new"),
        ),
        {},
    )
    settings = Settings(redis_url=redis_url, update_quiet_minutes=0)
    pipeline = runtime.pipeline(client, settings, rules, LocalFetcher(ROOT))
    reports = seed()
    now = datetime.now(UTC)

    def live(item: Item, text: str, n: int, **changes: str) -> Item:
        when = now - timedelta(minutes=60 - n)
        return dataclasses.replace(
            item, content=text, published=when, first_seen=now, baseline=False, **changes
        )

    done = [pipeline.process(live(item, text, n)) for n, (item, text) in enumerate(reports[:3])]
    said = [sentences(text) for _, text in reports[:3]]
    for n in range(6):  # rewrites made of what the story said already, in another order
        mix = said[n % 3][::-2] + said[(n + 1) % 3][1::2]
        item = live(
            reports[0][0], "\n".join(mix), 10 + n, guid=f"urn:mix:{n}", url=f"https://m.example/{n}"
        )
        done.append(pipeline.process(dataclasses.replace(item, title=f"Rewrite {n}")))
    item = live(
        reports[1][0], reports[1][1] + "\n" + UPDATE, 20, guid="urn:new", url="https://n.example/1"
    )
    done.append(pipeline.process(dataclasses.replace(item, title="Death toll rises")))

    alerts = [json.loads(f["alert"]) for _, f in client.xrange(Keys().alerts)]
    updates = {
        r: [a for a in alerts if a["rule"]["id"] == r and a["kind"] == "update"]
        for r in ("always", "quiet")
    }
    originals = [p for p in done[1:] if p.placement.outcome.is_original]
    quiet_mixes = [p for p in done[3:-1] if p.placement.outcome.is_original and not p.adds]
    assert len(quiet_mixes) >= 3  # rewrites that add nothing
    assert len(updates["always"]) == len(originals)
    assert len(updates["quiet"]) == sum(1 for p in originals if p.adds) < len(originals)
    assert all(a["adds"] for a in updates["quiet"])
    held = {p.alerts_held.get("quiet") for p in quiet_mixes}
    assert held == {"update held: the report adds nothing new (updates = when-new)"}


def test_a_sink_can_take_updates_only_when_new() -> None:
    from monitor.alertfilter import Filter
    from monitor.errors import ConfigError
    from monitor.sinkconfig import parse_sinks

    (sink,) = parse_sinks(
        [{"name": "desk", "type": "webhook", "url": "http://127.0.0.1:9/x", "updates": "when-new"}],
        "test",
    )
    update = {"kind": "update", "adds": [], "rule": {"id": "r"}, "item": {}}
    assert not sink.filter.matches(update)
    assert sink.filter.matches({**update, "adds": [{"sentence": "x", "names": [], "figures": []}]})
    assert sink.filter.matches({**update, "kind": "new"})
    assert Filter().matches(update)  # the default: every update
    assert "updates when the report adds something" in sink.filter.describe()
    try:
        parse_sinks([{"name": "d", "type": "webhook", "url": "http://h/x", "updates": "some"}], "t")
    except ConfigError as exc:
        assert "updates: expected always or when-new" in str(exc)
    else:
        raise AssertionError("a bad `updates` was accepted")
