"""`monitor top`: stories ranked by their recent distinct sources on the report clock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from monitor.cli.top import sparkline
from monitor.config import Settings
from monitor.pipeline.process import Pipeline
from monitor.pipeline.top import top_stories
from monitor.store.keys import Keys

from .breaking_feed import OTHER, report
from .test_breaking import T0, burst, quake_pipeline, run


@pytest.fixture
def pipeline(tmp_path: Path, redis_url: str, client: redis.Redis) -> Pipeline:
    return quake_pipeline(tmp_path, redis_url, client)


def stream(pipeline: Pipeline) -> None:
    """A tram story reported steadily for a day, an earthquake bursting at its end."""
    trams = [report(900 + n, f"tram{n}.example", T0 + timedelta(hours=3 * n), OTHER)
             for n in range(8)]  # fmt: skip
    quake = [report(0, "calm0.example", T0), *burst(100, T0 + timedelta(hours=21))]
    run(pipeline, trams + quake)


def test_top_ranks_by_recent_sources_on_the_report_clock(
    pipeline: Pipeline, client: redis.Redis
) -> None:
    stream(pipeline)
    top = top_stories(client, Keys(), hours=6)
    assert top.now == T0 + timedelta(hours=21, minutes=40)  # the newest report, not the wall
    first, second = top.stories
    assert first.title.startswith("Earthquake") and second.title.startswith("Ghent")
    assert len(first.recent_sources) == 6 and first.size == 10
    assert first.per_hour[-1] == 9 and len(first.per_hour) == 6
    assert first.first == T0 and first.rules == ["quake"]
    # Earlier on the stream's clock the earthquake had one report, days before: trams lead.
    before = top_stories(client, Keys(), hours=6, as_of=T0 + timedelta(hours=20))
    assert [s.title[:5] for s in before.stories] == ["Ghent"]
    assert len(top_stories(client, Keys(), hours=24, limit=1).stories) == 1
    assert top_stories(client, Keys(), hours=6, rule="nothing").stories == []


def test_monitor_top_json(
    pipeline: Pipeline, client: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    stream(pipeline)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env["MONITOR_REDIS_URL"] = redis_url
    command = [sys.executable, "-m", "monitor", "top", "--hours", "24"]
    done = subprocess.run([*command, "--json"], env=env, capture_output=True, text=True,
                          cwd=tmp_path, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["now"] == "2026-03-03T03:40:00Z" and found["hours"] == 24
    assert [s["title"][:5] for s in found["stories"]] == ["Earth", "Ghent"]
    text = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert text.returncode == 0 and "Earthquake" in text.stdout.splitlines()[1]
    bad = subprocess.run([*command[:-2], "--hours", "0"], env=env, capture_output=True,
                         text=True, cwd=tmp_path)  # fmt: skip
    assert bad.returncode == 2 and "expected 1 to 10000" in bad.stderr


def test_sparkline() -> None:
    assert sparkline([0, 1, 2, 8]) == " ▁▂█"
    assert sparkline([0, 0]) == "  "


def test_the_desk_top_page(pipeline: Pipeline, client: redis.Redis, redis_url: str, desk) -> None:
    stream(pipeline)
    web = desk(Settings(redis_url=redis_url), client)
    page = web.get("/top", params={"hours": "24"})
    assert page.status_code == 200
    html = page.text
    assert html.index("Earthquake hits Izmir") < html.index("Ghent approves tram line")
    assert html.count('class="bar"') == 2 * 24  # reports per hour, one bar an hour
    assert "7 sources lately" in html and 'href="/top"' in html
    assert "Ghent" not in web.get("/top", params={"hours": "24", "rule": "nothing"}).text
    assert web.get("/top", params={"hours": "0"}).status_code == 400
    # The burst raised a `breaking` alert; the alerts page lists its kind.
    assert ">breaking<" in web.get("/alerts").text
