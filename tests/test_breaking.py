"""Breaking stories (monitor/dedup/breaking.py) and `breaking` alerts: a steady story never
breaks, a burst breaks once (not again within the quiet hours), one outlet reposting itself
breaks nothing, and the alerts are the alert schema's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
import redis

from monitor.config import Settings
from monitor.config.settings import AlertSettings, BreakingSettings
from monitor.dedup.activity import BUCKET, Background, StoryActivity
from monitor.dedup.breaking import check, poisson_tail
from monitor.ingest.fetch import LocalFetcher
from monitor.model import Item, Outcome
from monitor.pipeline import runtime
from monitor.pipeline.process import Pipeline
from monitor.rules import load_rules

from .breaking_feed import OTHER, report
from .conftest import ROOT

SCHEMA = json.loads((ROOT / "docs" / "alert.schema.json").read_text())
T0 = datetime(2026, 3, 2, 6, tzinfo=UTC)
RULE = """id: quake
name: Earthquakes
severity: high
query: 'earthquake OR quake OR tram'
breaking: true
"""


def test_poisson_tail() -> None:
    assert poisson_tail(0, 3.0) == 1.0
    assert poisson_tail(1, 1.0) == pytest.approx(1 - 0.36788, abs=1e-5)
    assert poisson_tail(6, 1.0) == pytest.approx(0.000594, abs=1e-6)


def activity(reports: list[tuple[float, str]]) -> StoryActivity:
    """(report time, source) pairs as the activity hash would hold them."""
    stored: dict[str, str] = {}
    for when, source in reports:
        b = int(when // BUCKET)
        stored[str(b)] = str(int(stored.get(str(b), "0")) + 1)
        names = set(stored.get(f"{b}:s", "|").strip("|").split("|")) - {""}
        stored[f"{b}:s"] = "|" + "|".join(sorted(names | {source})) + "|"
    return StoryActivity.parse(stored)


def test_the_rule_on_activity_alone() -> None:
    rule, t = BreakingSettings(), T0.timestamp()
    quiet = Background(reports=100, story_hours=90)
    burst = [(t + 300 * i, f"s{i % 5}") for i in range(8)]
    assert (found := check(activity(burst), quiet, t + 2100, rule)) is not None
    assert found.reports == 8 and len(found.sources) == 5 and found.p_value <= 0.001
    # The same burst from one outlet, or from two: below the floor of distinct sources.
    assert check(activity([(w, "s0") for w, _ in burst]), quiet, t + 2100, rule) is None
    assert check(activity([(w, f"s{i % 2}") for i, (w, _) in enumerate(burst)]), quiet,
                 t + 2100, rule) is None  # fmt: skip
    # A story that always gets eight reports an hour does not break with eight more.
    steady = [(t - 3600 * h + 450 * i, f"s{i}") for h in range(1, 12) for i in range(8)]
    assert check(activity(steady + burst), quiet, t + 2100, rule) is None
    # Nor does a burst in a stream where every story's hour holds as many.
    assert check(activity(burst), Background(reports=900, story_hours=100), t + 2100, rule) is None


@pytest.fixture
def pipeline(tmp_path: Path, redis_url: str, client: redis.Redis) -> Pipeline:
    return quake_pipeline(tmp_path, redis_url, client)


def quake_pipeline(tmp_path: Path, redis_url: str, client: redis.Redis) -> Pipeline:
    """A pipeline with the one rule RULE, raising alerts for reports of any age."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "quake.yaml").write_text(RULE)
    settings = Settings(redis_url=redis_url, alerts=AlertSettings(max_age=0))
    return runtime.pipeline(client, settings, load_rules(rules), LocalFetcher(ROOT))


def run(pipeline: Pipeline, items: list[Item]) -> list[tuple[Item, list[str]]]:
    """Each item's breaking alert ids, in report-time order."""
    out = []
    for item in sorted(items, key=lambda i: (i.time, i.id)):
        result = pipeline.process(item)
        breaking = [a for a in result.alerts if published(pipeline)[a]["kind"] == "breaking"]
        out.append((item, breaking))
    return out


def published(pipeline: Pipeline) -> dict[str, dict]:
    stream = pipeline.queue.client.xrange(pipeline.queue.keys.alerts)
    alerts = [json.loads(fields["alert"]) for _, fields in stream]
    return {a["id"]: a for a in alerts}


def steady_reports(start: int = 0) -> list[Item]:
    """One report every three hours for two days, each from an outlet of its own."""
    return [report(start + n, f"steady{n}.example", T0 + timedelta(hours=3 * n)) for n in range(16)]


def test_a_steady_story_never_breaks(pipeline: Pipeline) -> None:
    results = run(pipeline, steady_reports())
    outcomes = {r.placement.outcome for r in map(pipeline.process, [i for i, _ in results])}
    assert outcomes == {Outcome.SEEN}
    assert not any(ids for _, ids in results)
    assert "breaking" not in {a["kind"] for a in published(pipeline).values()}


def burst(start: int, at: datetime, outlets: int = 6, size: int = 9) -> list[Item]:
    """`size` reports within 40 minutes from `outlets` outlets."""
    return [
        report(start + n, f"wire{n % outlets}.example", at + timedelta(minutes=5 * n))
        for n in range(size)
    ]


def test_a_burst_breaks_once_and_not_again_within_the_quiet_hours(pipeline: Pipeline) -> None:
    calm = [report(n, f"calm{n}.example", T0 + timedelta(hours=4 * n)) for n in range(6)]
    first = burst(100, T0 + timedelta(hours=22))
    second = burst(200, T0 + timedelta(hours=26))  # within 12 h of the first: held
    # 18 h later: breaks again, though it must now beat the two bursts of its own past
    # in the story's and the (small) stream's rates
    third = burst(300, T0 + timedelta(hours=40), size=12)
    others = [report(900 + n, f"tram{n}.example", T0 + timedelta(hours=5 * n), OTHER) for n in
              range(8)]  # fmt: skip
    results = run(pipeline, calm + first + second + third + others)
    stories = {pipeline.process(i).placement.story_id for i in calm + first + second + third}
    assert len(stories) == 1
    broke = [(item, ids) for item, ids in results if ids]
    assert len(broke) == 2
    (one, (a,)), (two, (b,)) = broke
    assert one in first and two in third and a != b
    alert = published(pipeline)[a]
    jsonschema.validate(alert, SCHEMA)
    assert alert["kind"] == "breaking" and alert["rule"]["id"] == "quake"
    why = alert["breaking"]
    assert why["reports"] >= 4 and len(why["sources"]) >= 3
    assert set(why["sources"]) <= {f"wire{n}.example" for n in range(6)}
    assert why["baseline"]["expected"] >= 1.0 and why["p_value"] <= 0.001
    assert alert["item"]["url"] == one.url
    # Processing again raises nothing new (the same break number for the same item).
    again = pipeline.process(one)
    assert a in again.alerts or not again.alerts
    assert len([x for x in published(pipeline).values() if x["kind"] == "breaking"]) == 2


def test_one_outlet_reposting_itself_does_not_break_a_story(pipeline: Pipeline) -> None:
    calm = [report(n, f"calm{n}.example", T0 + timedelta(hours=4 * n)) for n in range(6)]
    reposts = burst(100, T0 + timedelta(hours=22), outlets=1, size=12)
    results = run(pipeline, calm + reposts)
    assert not any(ids for _, ids in results)


def test_a_rule_without_breaking_raises_none(
    tmp_path: Path, redis_url: str, client: redis.Redis
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "quake.yaml").write_text(RULE.replace("breaking: true", "breaking: false"))
    settings = Settings(redis_url=redis_url, alerts=AlertSettings(max_age=0))
    pipeline = runtime.pipeline(client, settings, load_rules(rules), LocalFetcher(ROOT))
    results = run(pipeline, burst(100, T0 + timedelta(hours=22)))
    assert not any(ids for _, ids in results)


def breaking_alerts(client: redis.Redis) -> set[tuple[str, str, str]]:
    """(alert id, story, the item's guid) of every `breaking` alert in the stream."""
    stream = client.xrange("monitor:alerts")
    alerts = [json.loads(fields["alert"]) for _, fields in stream]
    return {
        (a["id"], a["story"]["id"], a["item"]["guid"]) for a in alerts if a["kind"] == "breaking"
    }


@pytest.mark.slow
def test_a_replay_and_the_live_daemon_raise_the_same_breaking_alerts(
    feed_server, daemons, client: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    from .breaking_feed import rss
    from .processes import wait_for
    from .test_daemon import config

    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=26)
    calm = [report(n, f"calm{n}.example", start + timedelta(hours=4 * n)) for n in range(6)]
    items = calm + burst(100, start + timedelta(hours=25))  # the last one 40 min ago
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "quake.yaml").write_text(RULE)
    feed = tmp_path / "burst.xml"
    feed.write_text(rss(items), encoding="utf-8")

    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env["MONITOR_REDIS_URL"] = redis_url
    command = [sys.executable, "-m", "monitor", "replay", "--json", "--rules", str(rules)]
    done = subprocess.run([*command, str(feed)], env=env, capture_output=True, text=True,
                          cwd=tmp_path, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    replayed = breaking_alerts(client)
    assert len(replayed) == 1

    client.flushall()
    feed_server.static("/feed.xml", rss(items).encode())
    daemon = daemons(config(tmp_path, feed_server, rules=rules))
    wait_for(lambda: len(daemon.events("item_processed")) == len(items), timeout=60)
    # (alerts reach the stream once held long enough: alerts.durable_hold)
    wait_for(lambda: breaking_alerts(client) == replayed, timeout=30)
