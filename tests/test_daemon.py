"""`monitor run` as a process: live polling, durability across SIGKILL, two daemons, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis

from monitor.store.keys import Keys

from .conftest import RULES, SAMPLE_FEEDS, recent
from .feedserver import FeedServer, Reply
from .processes import wait_for

PAGES = SAMPLE_FEEDS / "pages"
SAMPLE_NEWEST = datetime.now(UTC) - timedelta(minutes=10)  # the same dates on every poll


def serve_sample(server: FeedServer, count: int = 5) -> list[str]:
    """The sample feed over HTTP, its first `count` items; pages under /pages/."""
    body = recent((SAMPLE_FEEDS / "feed.xml").read_text(), SAMPLE_NEWEST)
    head, *items = body.split("<item>")
    tail = items[-1].split("</channel>")[1]
    items[-1] = items[-1].split("</channel>")[0]
    chosen = items[:count]
    server.static("/feed.xml", ("<item>".join([head, *chosen]) + "</channel>" + tail).encode())
    html = {"Content-Type": "text/html"}
    for page in PAGES.iterdir():
        server.routes[f"/pages/{page.name}"] = lambda h, p=page: Reply(200, p.read_bytes(), html)
    return [c.split("<guid", 1)[1].split(">", 1)[1].split("<", 1)[0] for c in chosen]


def config(tmp_path: Path, server: FeedServer, rules: Path = RULES, **daemon: str | float) -> Path:
    daemon.setdefault("listen", "")
    lines = [
        f'rules_dir = "{rules}"',
        "[schedule]\ninterval = 1\nmin_interval = 1\njitter = 0",
        "[daemon]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in daemon.items()),
        f'[[feeds]]\nurl = "{server.url("/feed.xml")}"\nname = "sample"\ninterval = 1',
    ]
    path = tmp_path / "monitor.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def alerts(client: redis.Redis) -> list[dict]:
    return [json.loads(f["alert"]) for _, f in client.xrange(Keys().alerts)]


@pytest.mark.slow
def test_an_item_added_to_a_live_feed_alerts_and_sigterm_exits_0(
    feed_server: FeedServer, daemons, client: redis.Redis, tmp_path: Path
) -> None:
    serve_sample(feed_server, count=2)  # Fakti and Al Mayadeen: no rule matches yet
    daemon = daemons(config(tmp_path, feed_server, listen="127.0.0.1:0"))
    wait_for(lambda: len(daemon.events("item_processed")) == 2)
    wait_for(lambda: any(e["status"] == 304 for e in daemon.events("feed_polled")))
    assert alerts(client) == []
    serve_sample(feed_server, count=3)  # the Korea Herald report appears in the feed
    wait_for(lambda: len(alerts(client)) == 1, timeout=15)
    assert alerts(client)[0]["kind"] == "new"
    assert alerts(client)[0]["item"]["source"] == "The Korea Herald"
    assert len(daemon.events("item_processed")) == 3

    (listening,) = daemon.events("http_listening")
    base = f"http://{listening['address']}"
    health = httpx.get(f"{base}/healthz")
    assert health.status_code == 200 and health.json()["redis"] is True
    metrics = httpx.get(f"{base}/metrics").text
    for line in (
        'monitor_http_responses_total{code="304"}',
        "monitor_items_enqueued_total 3.0",
        'monitor_items_processed_total{outcome="same_story"} 2.0',
        "monitor_alerts_published_total 1.0",
        "monitor_processing_seconds_count 3.0",
        "monitor_items_lag 0.0",
    ):
        assert line in metrics
    assert daemon.stop(signal.SIGTERM) == 0
    assert daemon.events("daemon_stopped")


HERALD = "/pages/koreaherald-kim-promises-putin-full-support.html"


def serve_sample_with_a_hanging_page(server: FeedServer):
    """Three sample items, the third's page hanging for 60 s: its path and real route."""
    serve_sample(server, count=3)
    page = server.routes[HERALD]
    server.routes[HERALD] = lambda h: Reply(200, page(h).body, delay=60)
    return HERALD, page


@pytest.mark.slow
def test_a_daemon_killed_mid_item_loses_and_doubles_nothing(
    feed_server: FeedServer, daemons, client: redis.Redis, tmp_path: Path
) -> None:
    herald, page = serve_sample_with_a_hanging_page(feed_server)
    cfg = config(tmp_path, feed_server, claim_idle=1)
    first = daemons(cfg)
    wait_for(lambda: feed_server.hits(herald) >= 1)  # mid-item: fetching its page
    time.sleep(0.5)
    first.stop(signal.SIGKILL)
    assert alerts(client) == []
    pending = client.xpending(Keys().items, "processors")["pending"]
    assert pending >= 1  # the item in hand was never acked

    feed_server.routes[herald] = page
    second = daemons(cfg)
    wait_for(lambda: len(alerts(client)) == 1)
    wait_for(lambda: client.xpending(Keys().items, "processors")["pending"] == 0)
    time.sleep(1.5)  # a few more polls: nothing new, nothing re-alerted
    assert [a["kind"] for a in alerts(client)] == ["new"]
    assert second.stop() == 0


@pytest.mark.slow
def test_a_daemon_restarted_under_its_name_resumes_its_items_at_once(
    feed_server: FeedServer, daemons, client: redis.Redis, tmp_path: Path
) -> None:
    herald, page = serve_sample_with_a_hanging_page(feed_server)
    cfg = config(tmp_path, feed_server, consumer="monitor-0", claim_idle=600)
    first = daemons(cfg)
    wait_for(lambda: feed_server.hits(herald) >= 1)
    first.stop(signal.SIGKILL)
    held = client.xpending_range(Keys().items, "processors", "-", "+", 10, "monitor-0")
    assert held  # the item in hand, and maybe more of its batch

    feed_server.routes[herald] = page
    started = time.monotonic()
    second = daemons(cfg)  # same name: no need to wait claim_idle (600 s) for its own items
    wait_for(lambda: [a["kind"] for a in alerts(client)] == ["new"])
    assert time.monotonic() - started < 30
    processed = [e["item"] for d in (first, second) for e in d.events("item_processed")]
    assert len(processed) == len(set(processed)) == 3
    assert second.stop() == 0


@pytest.mark.slow
def test_two_daemons_poll_each_feed_once_per_interval_and_process_each_item_once(
    feed_server: FeedServer, daemons, client: redis.Redis, tmp_path: Path
) -> None:
    guids = serve_sample(feed_server, count=5)
    cfg = config(tmp_path, feed_server)
    pair = [daemons(cfg), daemons(cfg)]
    wait_for(lambda: len(alerts(client)) == 1)
    started = time.monotonic()
    hits_before = feed_server.hits("/feed.xml")
    time.sleep(4)
    polls = feed_server.hits("/feed.xml") - hits_before
    elapsed = time.monotonic() - started
    assert polls <= elapsed / 1 + 2  # once per 1 s interval, not once per daemon
    for daemon in pair:
        assert daemon.stop() == 0
    processed = [e["item"] for d in pair for e in d.events("item_processed")]
    assert sorted(processed) == sorted(set(processed)) and len(processed) == len(guids)
    assert [a["kind"] for a in alerts(client)] == ["new"]  # later sources: within the quiet hour


@pytest.mark.slow
def test_sigterm_hands_back_an_item_whose_page_hangs_and_lists_feed_state(
    feed_server: FeedServer, daemons, client: redis.Redis, tmp_path: Path, redis_url: str
) -> None:
    serve_sample(feed_server, count=1)
    fakti = "/pages/fakti-russia-dprk-agreed-develop-bilateral-relations.html"
    feed_server.routes[fakti] = lambda h: Reply(200, b"", delay=60)
    cfg = config(tmp_path, feed_server)
    daemon = daemons(cfg)
    wait_for(lambda: feed_server.hits(fakti) >= 1)
    started = time.monotonic()
    assert daemon.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 5  # did not wait for the page
    assert client.xpending(Keys().items, "processors")["pending"] == 1  # handed back

    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    listing = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(cfg), "feeds", "list", "--json"],
        env={**env, "MONITOR_REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        check=True,
    )
    (feed,) = [json.loads(line) for line in listing.stdout.splitlines()]
    assert feed["name"] == "sample" and feed["status"] == 200 and feed["new"] == 1
    assert feed["errors"] == 0 and feed["last_poll"] and feed["next_poll"]
    status = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(cfg), "status"],
        env={**env, "MONITOR_REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "1 in progress" in status.stdout
    assert "feeds: 1 (1 configured, 0 imported), 0 paused, 0 failing" in status.stdout
    assert "dedup window (168 h): 0 items indexed; Redis memory" in status.stdout


@pytest.mark.slow
def test_rules_reload_on_sighup_and_a_broken_change_keeps_the_old_set(
    feed_server: FeedServer, daemons, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "one.yaml").write_text("id: one\nname: One\nquery: treaty\n")
    serve_sample(feed_server, count=1)
    daemon = daemons(config(tmp_path, feed_server, rules=rules))
    wait_for(lambda: daemon.events("daemon_started"))
    assert daemon.events("daemon_started")[0]["rules"] == 1
    (rules / "two.yaml").write_text("id: two\nname: Two\nquery: '(broken'\n")
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: daemon.events("rules_reload_failed"), timeout=10)
    assert daemon.events("rules_reload_failed")[0]["kept"] == 1
    (rules / "two.yaml").write_text("id: two\nname: Two\nquery: pact\n")
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: daemon.events("rules_reloaded"), timeout=10)
    assert daemon.events("rules_reloaded")[0]["rules"] == 2
    assert daemon.stop() == 0


@pytest.mark.slow
def test_a_new_rule_with_a_backfill_window_alerts_on_what_came_before(
    feed_server: FeedServer, daemons, client: redis.Redis, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "aliases.yaml").write_text((RULES / "aliases.yaml").read_text())
    (rules / "other.yaml").write_text("id: other\nname: Other\nquery: taiwan\n")
    serve_sample(feed_server, count=5)
    daemon = daemons(config(tmp_path, feed_server, rules=rules))
    wait_for(lambda: len(daemon.events("item_processed")) == 5)
    assert alerts(client) == []
    treaty = (RULES / "dprk-russia-treaty.yaml").read_text() + "backfill: 1d\n"
    (rules / "dprk-russia-treaty.yaml").write_text(treaty)
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: daemon.events("rule_backfilled"), timeout=15)
    (event,) = daemon.events("rule_backfilled")
    assert event["rule"] == "dprk-russia-treaty" and event["items"] == 5 and event["alerts"] == 1
    assert [(a["kind"], a.get("backfill")) for a in alerts(client)] == [
        ("new", True),
    ]
    daemon.proc.send_signal(signal.SIGHUP)  # the same version again: no second backfill
    time.sleep(1)
    assert len(daemon.events("rule_backfilled")) == 1
    assert daemon.stop() == 0


@pytest.mark.slow
def test_feeds_imported_while_running_are_polled(
    feed_server: FeedServer, daemons, tmp_path: Path, redis_url: str
) -> None:
    serve_sample(feed_server, count=1)
    feed_server.static("/second.xml", (SAMPLE_FEEDS / "feed.xml").read_bytes())
    daemon = daemons(config(tmp_path, feed_server))
    wait_for(lambda: daemon.events("daemon_started"))
    opml = tmp_path / "more.opml"
    second = feed_server.url("/second.xml")
    opml.write_text(
        '<opml version="2.0"><head/><body><outline text="More">'
        f'<outline text="Second" xmlUrl="{second}"/></outline></body></opml>'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env["MONITOR_REDIS_URL"] = redis_url
    command = [sys.executable, "-m", "monitor", "feeds", "import", str(opml)]
    subprocess.run(command, env=env, check=True, capture_output=True)
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: daemon.events("feed_added"), timeout=10)
    wait_for(lambda: feed_server.hits("/second.xml") >= 1, timeout=10)
    assert daemon.stop() == 0
