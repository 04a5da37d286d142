"""Retained items and backfills: a rule added later raises the alerts it would have raised live."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import redis

from monitor.cli.progress import Progress
from monitor.config import Settings
from monitor.ingest.fetch import LocalFetcher
from monitor.pipeline import backfill, runtime
from monitor.pipeline.replay import read_feeds
from monitor.retained.items import RetainedItems
from monitor.rules import load_rules
from monitor.store.keys import Keys

from .conftest import FIXTURES, ROOT, RULES, SAMPLE_FEEDS

FEEDS = [SAMPLE_FEEDS, FIXTURES / "feeds" / "extra.xml"]


def rules_without(tmp_path: Path, rule_id: str) -> Path:
    directory = tmp_path / "rules"
    directory.mkdir(exist_ok=True)
    for path in RULES.iterdir():
        if path.stem != rule_id:
            (directory / path.name).write_text(path.read_text())
    return directory


def process_all(client: redis.Redis, redis_url: str, rules_dir: Path) -> None:
    pipeline = runtime.pipeline(
        client, Settings(redis_url=redis_url), load_rules(rules_dir), LocalFetcher(ROOT)
    )
    for item in read_feeds(FEEDS):
        pipeline.process(item)


def alerts(client: redis.Redis) -> list[dict]:
    return [json.loads(f["alert"]) for _, f in client.xrange(Keys().alerts)]


def test_processed_items_are_retained_with_their_story(client: redis.Redis, redis_url: str) -> None:
    process_all(client, redis_url, RULES)
    retained = RetainedItems(client, Keys(), retention=3600, maxlen=1000)
    kept = list(retained.read(since=time.time() - 60))
    assert len(kept) == 7  # five seeds, the near-duplicate, the unrelated story
    assert {k.placement.outcome for k in kept} == {"new_story", "same_story", "near_duplicate"}
    assert all(len(k.article.text) > 500 for k in kept)
    process_all(client, redis_url, RULES)  # the same items again are not kept twice
    assert retained.count() == 7
    assert list(retained.read(since=time.time() + 60)) == []


def test_backfill_raises_what_a_live_run_raised(
    client: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    """The done-when check: the same stories, kinds and alert ids as live."""
    process_all(client, redis_url, RULES)
    live = {(a["rule"]["id"], a["story"]["id"], a["kind"], a["id"]) for a in alerts(client)}
    assert live

    client.flushall()
    process_all(client, redis_url, rules_without(tmp_path, "dprk-russia-treaty"))
    assert alerts(client) == []  # the rule did not exist yet
    rules = load_rules(RULES)
    pipeline = runtime.pipeline(client, Settings(redis_url=redis_url), rules, LocalFetcher())
    rule = rules.get("dprk-russia-treaty")
    dry = backfill.run(rule, pipeline.retained, pipeline, since=time.time() - 3600, dry_run=True)
    assert dry.matched >= 3 and len(dry.stories) == 1 and alerts(client) == []

    report = backfill.run(
        rule, pipeline.retained, pipeline, since=time.time() - 3600, dry_run=False
    )
    backfilled = alerts(client)
    assert {(a["rule"]["id"], a["story"]["id"], a["kind"], a["id"]) for a in backfilled} == live
    assert all(a["backfill"] is True for a in backfilled)
    assert report.alerts == len(backfilled)
    again = backfill.run(rule, pipeline.retained, pipeline, since=time.time() - 3600, dry_run=False)
    assert again.alerts == 0 and len(alerts(client)) == len(backfilled)  # idempotent


def test_backfill_on_the_command_line(client: redis.Redis, redis_url: str, tmp_path: Path) -> None:
    process_all(client, redis_url, rules_without(tmp_path, "dprk-russia-treaty"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env["MONITOR_REDIS_URL"] = redis_url
    command = [
        sys.executable,
        "-m",
        "monitor",
        "rules",
        "backfill",
        "dprk-russia-treaty",
        "--rules",
        str(RULES),
        "--since",
        "1h",
    ]
    dry = subprocess.run([*command, "--dry-run"], env=env, capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    assert "would match" in dry.stdout and "no alert before" in dry.stdout and "«" in dry.stdout
    assert dry.stderr == ""  # no progress bar when stderr is not a terminal
    done = subprocess.run([*command, "--json"], env=env, capture_output=True, text=True)
    *stories, summary = [json.loads(line) for line in done.stdout.splitlines()]
    assert (
        len(stories) == 1
        and summary["summary"]["alerts_published"] == len(stories[0]["alerts"]) >= 1
    )
    consume = [sys.executable, "-m", "monitor", "consume", "--from-start"]
    read = subprocess.run(consume, env=env, capture_output=True, text=True)
    first, *_ = read.stdout.split("\n\n")
    assert "treaty — new (backfill) · story" in first, read.stdout  # not to be taken as live
    assert "(a backfill: raised by `monitor rules backfill` over retained items" in first
    bad = subprocess.run([*command[:-1], "soon"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "--since: expected a duration" in bad.stderr


def test_progress_shows_rate_and_eta_only_on_a_terminal(tmp_path: Path) -> None:
    log = tmp_path / "progress.txt"
    with log.open("w") as stream:
        quiet = Progress(10, "replay", stream=stream)  # a file is not a terminal
        quiet.advance(10)
        quiet.close()
    assert log.read_text() == ""
    with log.open("w") as stream:
        shown = Progress(10, "replay", stream=stream, enabled=True)
        shown.advance(5)
        line = shown.line()
        shown.close()
    assert "replay [############............] 5/10" in line and "/s ETA 0:00:0" in line
    assert log.read_text().endswith("\n")


def test_a_scan_says_which_stories_would_alert_and_which_did(
    client: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    process_all(client, redis_url, rules_without(tmp_path, "dprk-russia-treaty"))
    rules = load_rules(RULES)
    pipeline = runtime.pipeline(client, Settings(redis_url=redis_url), rules, LocalFetcher())
    assert pipeline.retained is not None
    rule = rules.get("dprk-russia-treaty")
    since = time.time() - 3600
    scan = backfill.scan(rule, pipeline.retained, since=since, published=pipeline.queue.published)
    assert scan.scanned == 7 and scan.count >= 3 and len(scan.matches) == scan.count
    assert list(scan.stories.values()) == [backfill.Verdict.WOULD_ALERT]
    assert scan.would_alert == 1 and alerts(client) == []  # a scan publishes nothing
    assert all(m.clauses and m.clauses[0].holds for m in scan.matches)
    newest = [tuple(map(int, m.kept.entry_id.split("-"))) for m in scan.matches]
    assert newest == sorted(newest, reverse=True)

    backfill.run(rule, pipeline.retained, pipeline, since=since, dry_run=False)
    again = backfill.scan(rule, pipeline.retained, since=since, published=pipeline.queue.published)
    assert list(again.stories.values()) == [backfill.Verdict.ALERTED] and again.would_alert == 0
    shown = backfill.scan(rule, pipeline.retained, since=since, shown=1)
    assert shown.scanned == 7 and len(shown.matches) == 1 and shown.count == scan.count
