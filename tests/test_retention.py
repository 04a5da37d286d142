"""Retention you can see: the items stream trimmed only past what every group acked, lag
per consumer group computed by the monitor (Redis 6.2 has no `lag`), a warning within 20%
of the retention, and pending entries trimmed away dead-lettered, never silently acked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
from structlog.testing import capture_logs

from monitor.config import DaemonSettings, Settings
from monitor.daemon import Daemon
from monitor.delivery.consumer import AlertConsumer, dead_letters
from monitor.delivery.queue import AlertQueue
from monitor.ingest.items import ItemsQueue
from monitor.model import Item
from monitor.store.connection import connect
from monitor.store.keys import Keys
from monitor.store.retention import group_lags
from monitor.store.streams import TRIMMED

from .conftest import ROOT, RULES
from .test_cli import monitor


def _items(start: int, count: int) -> list[Item]:
    return [
        Item(guid=f"g{n}", url="", title=f"t{n}", source="s", feed="f")
        for n in range(start, start + count)
    ]


def test_the_items_stream_is_never_trimmed_under_a_pending_or_unread_item(
    client: redis.Redis,
) -> None:
    queue = ItemsQueue(client, Keys(), maxlen=10)
    queue.ensure_group()
    queue.append(_items(0, 30))
    assert client.xlen(Keys().items) == 30  # nothing read yet: nothing may go
    held = queue.read("a", count=5)  # pending with a
    queue.append(_items(30, 5))
    assert client.xlen(Keys().items) == 35
    rest = queue.read("b", count=100)
    queue.ack(*(e.entry_id for e in rest))  # all acked but a's five
    queue.append(_items(35, 1))
    entries = client.xrange(Keys().items)
    assert entries[0][0] == held[0].entry_id  # the oldest pending entry is still there
    queue.ack(*(e.entry_id for e in held))
    queue.append(_items(36, 1))
    assert client.xlen(Keys().items) == 10  # then trimmed to maxlen, no further
    assert [int(f["seq"]) for _, f in client.xrange(Keys().items)] == list(range(28, 38))
    assert queue.lag() == (2, 0)  # the last two were never read


@pytest.mark.slow
def test_lag_is_computed_without_xinfo_lag_at_any_stream_length(client: redis.Redis) -> None:
    queue = AlertQueue(client, Keys(), maxlen=100_000, id_ttl=60)
    for n in range(25_000):  # beyond what counting entries one by one would reach
        queue.publish({"id": f"a{n}"})
    consumer = AlertConsumer(client, group="slow", claim_idle=0)
    got = consumer.group.read("c", count=100)
    assert len(got) == 100
    (lag,) = group_lags(client, Keys().alerts, maxlen=100_000)
    assert (lag.lag, lag.pending, lag.behind) == (24_900, 100, 25_000)
    assert lag.group == "slow" and not lag.at_risk
    assert consumer.lag() == (24_900, 100)


def test_a_lagging_group_is_warned_then_its_trimmed_pending_alerts_are_dead_letters(
    redis_url: str, client: redis.Redis, tmp_path: Path
) -> None:
    settings = Settings(
        redis_url=redis_url, rules_dir=RULES, alerts_maxlen=300, daemon=DaemonSettings(listen="")
    )
    daemon = Daemon(settings, connect(redis_url))
    queue = AlertQueue(client, Keys(), maxlen=300, id_ttl=60)
    slow = AlertConsumer(client, group="slow", consumer="s1", claim_idle=0)
    fast = AlertConsumer(client, group="fast", claim_idle=0)
    for n in range(100):
        queue.publish({"id": f"a{n}", "kind": "new"})
    held = [d.entry_id for d in slow.poll()]  # ten pending with slow, never acked
    for d in fast.drain():
        fast.ack(d)
    for n in range(100, 250):  # slow: 250 behind of 300 (83%): within 20% of retention
        queue.publish({"id": f"a{n}", "kind": "new"})
    with capture_logs() as logs:
        lags = {g.group: g for g in daemon.worker.check_retention()}
    assert lags["slow"].at_risk and not lags["fast"].at_risk
    assert (lags["slow"].pending, lags["slow"].lag, lags["slow"].behind) == (10, 240, 250)
    (warning,) = [e for e in logs if e["event"] == "group_near_retention"]
    assert warning["group"] == "slow" and warning["log_level"] == "warning"
    assert warning["used"] == round(250 / 300, 3)
    metrics = daemon.metrics.group_used.labels(Keys().alerts, "slow")._value.get()
    assert metrics == round(250 / 300, 3)
    (tmp_path / "monitor.toml").write_text("alerts_maxlen = 300\n")
    status = monitor(
        "--config", str(tmp_path / "monitor.toml"), "status", cwd=ROOT, redis_url=redis_url
    )
    assert "alerts group slow: 240 unread, 10 pending, oldest " in status.stdout, status.stderr
    assert "83% of retention — within 20% of retention" in status.stdout
    assert "alerts group fast: 150 unread, 0 pending" in status.stdout

    for n in range(250, 700):  # the stream is trimmed past slow's pending alerts
        queue.publish({"id": f"a{n}", "kind": "new"})
    assert not client.xrange(Keys().alerts, min=held[0], max=held[0])
    with capture_logs() as logs:
        later = list(slow.drain())  # re-claims its pending alerts: gone
    assert [e["event"] for e in logs].count("entries_trimmed_before_delivery") >= 1
    letters = [d for d in dead_letters(client) if d["reason"] == TRIMMED]
    assert sorted(d["entry"] for d in letters) == sorted(held)
    assert all(d["group"] == "slow" and d["alert"] is None for d in letters)
    assert all(int(d["deliveries"]) >= 1 for d in letters)
    assert later and all(d.value is not None for d in later)  # what is retained still comes
    dead = monitor("consume", "--dead", "--json", cwd=ROOT, redis_url=redis_url)
    assert sum(json.loads(line)["reason"] == TRIMMED for line in dead.stdout.splitlines()) == 10
