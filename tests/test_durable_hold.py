"""Alerts held from consumers until the writes behind them are on disk (`alerts.durable_hold`):
staged, then released in order once old enough, by any number of daemons, each alert once;
the hold applied only when Redis may lose its last writes in a crash. The crash itself, with
three daemons: tests/test_rollback.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from monitor.config import Settings
from monitor.config.settings import AlertSettings
from monitor.daemon.metrics import Metrics
from monitor.daemon.release import Releaser
from monitor.delivery.consumer import AlertConsumer
from monitor.delivery.queue import AlertQueue
from monitor.model import AlertKind
from monitor.pipeline.runtime import durable_hold
from monitor.store.connection import connect, primaries
from monitor.store.keys import Keys

from .processes import wait_for

HOLD = 0.4


def staged(client: redis.Redis) -> int:
    return int(client.xlen(Keys().alerts_staged)) if client.exists(Keys().alerts_staged) else 0


def shown(client: redis.Redis) -> list[tuple[str, str]]:
    """(alert id, seq) of the alerts stream, in order."""
    return [(f["id"], f["seq"]) for _, f in client.xrange(Keys().alerts)]


def test_a_staged_alert_reaches_the_stream_once_it_is_hold_old(client: redis.Redis) -> None:
    queue = AlertQueue(client, Keys(), maxlen=1000, id_ttl=3600, hold=HOLD)
    consumer = AlertConsumer(client, group="desk", consumer="d1")
    assert queue.publish({"id": "a1"}) and queue.publish({"id": "a2"})
    assert queue.publish({"id": "a1"}) is None  # a repeat, staged or not, adds nothing
    assert staged(client) == 2 and shown(client) == []
    early = queue.release()
    assert early.count == 0 and early.staged == 2
    assert early.wait is not None and 0 < early.wait <= HOLD
    assert list(consumer.drain()) == []  # consumers see nothing yet
    time.sleep(early.wait)
    done = queue.release()
    assert (done.count, done.wait, done.staged) == (2, None, 0)
    assert shown(client) == [("a1", "1"), ("a2", "2")]  # in order, numbered as published
    got = list(consumer.drain())
    assert [d.value["id"] for d in got if d.value] == ["a1", "a2"]
    for delivery in got:
        consumer.ack(delivery)
    assert consumer.lag() == (0, 0)
    # A command publishing at once (no hold) numbers its alert after those released.
    AlertQueue(client, Keys(), maxlen=1000, id_ttl=3600).publish({"id": "b1"})
    assert shown(client)[-1] == ("b1", "3") and consumer.lag() == (1, 0)


def test_the_claim_is_made_when_the_alert_is_staged(client: redis.Redis) -> None:
    queue = AlertQueue(client, Keys(), maxlen=1000, id_ttl=3600, quiet=600, hold=HOLD)

    def build(item: str) -> Callable[[AlertKind, int], dict[str, Any]]:
        return lambda kind, n: {"id": f"{item}-{kind}-{n}", "kind": str(kind)}

    first = queue.claim_and_publish("s1", "r1", "i1", build("i1"), guess=0)
    assert first.alert is not None and first.alert["kind"] == "new" and first.entry
    assert queue.staging.is_set()
    # Another report of the story, before the release: no second `new`.
    second = queue.claim_and_publish("s1", "r1", "i2", build("i2"), guess=0)
    assert second.alert is None and second.held_until is not None
    again = queue.claim_and_publish("s1", "r1", "i1", build("i1"), guess=0)
    assert again.alert is not None and again.entry is None  # published (staged) before
    assert staged(client) == 1


def test_several_daemons_releasing_move_each_alert_once(
    client: redis.Redis, redis_url: str
) -> None:
    queue = AlertQueue(client, Keys(), maxlen=10_000, id_ttl=3600, hold=0.2)
    for n in range(1200):  # more than one release call moves at once
        queue.publish({"id": f"a{n}"})
    time.sleep(0.2)
    daemons = [
        AlertQueue(connect(redis_url), Keys(), maxlen=10_000, id_ttl=3600, hold=0.2)
        for _ in range(3)
    ]
    moved: list[int] = []
    threads = [
        threading.Thread(target=lambda q=q: moved.append(q.release().count)) for q in daemons
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(moved) == 1200 and staged(client) == 0
    assert shown(client) == [(f"a{n}", str(n + 1)) for n in range(1200)]


def test_the_daemon_releases_within_the_hold_and_at_stop(client: redis.Redis) -> None:
    queue = AlertQueue(client, Keys(), maxlen=1000, id_ttl=3600, hold=HOLD)
    metrics = Metrics()
    releaser = Releaser(queue, metrics)
    releaser.start()
    try:
        published = time.monotonic()
        queue.publish({"id": "a1"})
        wait_for(lambda: shown(client) != [], 5)
        waited = time.monotonic() - published
        assert HOLD * 0.9 <= waited <= HOLD + 1.0, waited  # woken by the staging, not late
        queue.publish({"id": "a2"})
    finally:
        releaser.stop()  # releases a2 before it returns: none left for the next start
    assert [a for a, _ in shown(client)] == ["a1", "a2"] and staged(client) == 0
    assert not releaser.thread.is_alive()
    assert metrics.registry.get_sample_value("monitor_alerts_staged") == 0


def test_the_hold_applies_when_a_crash_may_lose_the_last_writes(redis_with: Callable) -> None:
    settings = Settings(alerts=AlertSettings(durable_hold=1.5))
    for options, expected in (
        (("--appendfsync", "everysec"), (1.5, "everysec")),
        (("--appendfsync", "no"), (1.5, "no")),
        ((), (0.0, "always")),  # the test server's default
        (("--appendonly", "no"), (0.0, "no aof")),
    ):
        server = redis_with(*options)
        with server.client() as probe:
            assert durable_hold(probe, settings) == expected, options
    assert durable_hold(probe, Settings(alerts=AlertSettings(durable_hold=0))) == (0.0, "no aof")
    # A user that may not run CONFIG (a managed Redis): the setting decides.
    guarded = redis_with("--appendfsync", "always")
    with guarded.client() as admin:
        admin.acl_setuser(
            "monitor", enabled=True, passwords=["+pw"], keys="*", commands=["+@all", "-config"]
        )
    with redis.Redis(
        unix_socket_path=str(guarded.socket),
        username="monitor",
        password="pw",
        decode_responses=True,
    ) as user:
        assert durable_hold(user, settings) == (1.5, "unknown (CONFIG GET refused)")


def test_staged_alerts_and_the_hold_on_a_cluster(cluster_url: str) -> None:
    client = connect(cluster_url)
    queue = AlertQueue(client, Keys(), maxlen=1000, id_ttl=3600, hold=0.2)
    for n in range(5):
        queue.publish({"id": f"a{n}"})
    time.sleep(0.2)
    assert queue.release().count == 5
    assert shown(client) == [(f"a{n}", str(n + 1)) for n in range(5)]
    settings = Settings()
    assert durable_hold(client, settings) == (0.0, "no aof")
    # One master that may lose its last writes is enough: stories and claims spread.
    node = primaries(client)[1]
    node.config_set("appendonly", "yes")
    try:
        assert durable_hold(client, settings) == (2.0, "everysec, no aof")
    finally:
        node.config_set("appendonly", "no")


def test_a_daemon_without_a_hold_releases_what_others_left_staged(client: redis.Redis) -> None:
    AlertQueue(client, Keys(), maxlen=1000, id_ttl=3600, hold=60).publish({"id": "a1"})
    releaser = Releaser(AlertQueue(client, Keys(), maxlen=1000, id_ttl=3600), Metrics())
    releaser.start()
    try:
        wait_for(lambda: shown(client) == [("a1", "1")], 5)
    finally:
        releaser.stop()
    assert staged(client) == 0 and not releaser.thread.is_alive()
