"""The alert queue contract: consumer groups, re-claiming, dead letters, the webhook forwarder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import redis

from monitor.delivery.consumer import AlertConsumer, dead_letters
from monitor.delivery.forward import Forwarder, verify
from monitor.delivery.queue import AlertQueue
from monitor.store.keys import Keys

from .feedserver import FeedServer, Reply


def publish(client: redis.Redis, count: int, start: int = 0) -> list[str]:
    queue = AlertQueue(client, Keys(), maxlen=10_000, id_ttl=3600)
    ids = [f"{n:020x}" for n in range(start, start + count)]
    for alert_id in ids:
        queue.publish({"id": alert_id, "kind": "new", "rule": {"id": "r"}, "item": {"title": "t"}})
    return ids


def test_two_members_of_a_group_share_the_alerts_without_overlap(client: redis.Redis) -> None:
    ids = publish(client, 20)
    a = AlertConsumer(client, group="bots", consumer="a", batch=3)
    b = AlertConsumer(client, group="bots", consumer="b", batch=3)
    seen: dict[str, list[str]] = {"a": [], "b": []}
    while True:
        got = [(name, d) for name, c in (("a", a), ("b", b)) for d in c.poll()]
        if not got:
            break
        for name, delivery in got:
            seen[name].append(delivery.value["id"])
            (a if name == "a" else b).ack(delivery)
    assert seen["a"] and seen["b"]
    assert sorted(seen["a"] + seen["b"]) == ids  # each exactly once
    other = AlertConsumer(client, group="audit", consumer="x")  # another group: all again
    assert [d.value["id"] for d in other.drain()] == ids


def test_a_member_that_died_mid_batch_leaves_its_alerts_to_the_others(client: redis.Redis) -> None:
    ids = publish(client, 6)
    dying = AlertConsumer(client, group="bots", consumer="dying", batch=4, claim_idle=0.2)
    taken = dying.poll()  # ...and never acks: the process is killed here
    assert len(taken) == 4
    survivor = AlertConsumer(client, group="bots", consumer="survivor", batch=10, claim_idle=0.2)
    first = survivor.poll()
    assert [d.value["id"] for d in first] == ids[4:]  # new ones at once; not the dead member's
    for delivery in first:
        survivor.ack(delivery)
    time.sleep(0.3)
    reclaimed = survivor.poll()
    assert [d.value["id"] for d in reclaimed] == ids[:4]
    assert all(d.deliveries == 2 for d in reclaimed)


def test_a_poison_alert_goes_to_the_dead_letters(client: redis.Redis) -> None:
    (poison,) = publish(client, 1)
    consumer = AlertConsumer(client, group="bots", consumer="c", claim_idle=0.05, max_deliveries=3)
    attempts = 0
    deadline = time.monotonic() + 10
    while not list(dead_letters(client)) and time.monotonic() < deadline:
        for delivery in consumer.poll():
            attempts += 1
            consumer.retry(delivery, "handler raised")  # it always fails
        time.sleep(0.06)
    assert attempts == 3
    (letter,) = dead_letters(client)
    assert letter["alert"]["id"] == poison
    assert letter["reason"] == "delivered 4 times" and letter["group"] == "bots"
    assert consumer.lag() == (0, 0)  # acked on the way to the dead letters


def test_the_webhook_gets_each_alert_once_signed_after_errors(
    client: redis.Redis, feed_server: FeedServer
) -> None:
    ids = publish(client, 2)
    replies = iter([Reply(500), Reply(503, headers={"Retry-After": "0"}), Reply(200), Reply(204)])
    feed_server.routes["/hook"] = lambda h: next(replies)
    consumer = AlertConsumer(client, group="webhook", consumer="f")
    forwarder = Forwarder(consumer, feed_server.url("/hook"), secret="s3cret", backoff=0.01)
    assert forwarder.run(follow=False) == 2
    forwarder.close()
    assert len(feed_server.bodies) == 4  # 500, 503, then 200 for the first; 204 for the second
    delivered = [json.loads(body)["id"] for body in feed_server.bodies]
    assert delivered == [ids[0], ids[0], ids[0], ids[1]]
    for (_, headers), body in zip(feed_server.requests, feed_server.bodies, strict=True):
        assert verify(
            "s3cret", headers["x-monitor-timestamp"], body, headers["x-monitor-signature"]
        )
        assert not verify(
            "wrong", headers["x-monitor-timestamp"], body, headers["x-monitor-signature"]
        )
        assert headers["x-monitor-alert-id"] == json.loads(body)["id"]
    assert consumer.lag() == (0, 0)


def test_an_alert_a_working_webhook_refuses_is_dead_lettered_at_once(
    client: redis.Redis, feed_server: FeedServer
) -> None:
    publish(client, 2)
    answers = iter([Reply(204), Reply(400, b"bad request")])
    feed_server.routes["/hook"] = lambda h: next(answers)
    consumer = AlertConsumer(client, group="webhook", consumer="f")
    forwarder = Forwarder(consumer, feed_server.url("/hook"), backoff=0.01)
    assert forwarder.run(follow=False) == 1
    forwarder.close()
    assert len(feed_server.bodies) == 2  # not retried
    assert [letter["reason"] for letter in dead_letters(client)] == ["HTTP 400"]


def test_forward_and_dead_letters_from_the_command_line(
    client: redis.Redis, feed_server: FeedServer, redis_url: str, tmp_path: Path
) -> None:
    publish(client, 3)
    feed_server.routes["/ok"] = lambda h: Reply(200)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env.update(MONITOR_REDIS_URL=redis_url, MONITOR_WEBHOOK_SECRET="k")
    run = subprocess.run(
        [sys.executable, "-m", "monitor", "forward", "--webhook", feed_server.url("/ok")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "3 alerts delivered" in run.stderr
    headers = feed_server.requests[0][1]
    assert verify(
        "k", headers["x-monitor-timestamp"], feed_server.bodies[0], headers["x-monitor-signature"]
    )

    answers = iter([Reply(200), Reply(410)])
    feed_server.routes["/picky"] = lambda h: next(answers)
    publish(client, 2, start=100)
    subprocess.run(
        [sys.executable, "-m", "monitor", "forward", "--webhook", feed_server.url("/picky")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    dead = subprocess.run(
        [sys.executable, "-m", "monitor", "consume", "--dead", "--json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    (letter,) = [json.loads(line) for line in dead.stdout.splitlines()]
    assert letter["reason"] == "HTTP 410" and letter["group"] == "webhook"


def test_alerts_older_than_the_age_limit_are_trimmed(client: redis.Redis) -> None:
    queue = AlertQueue(client, Keys(), maxlen=10_000, id_ttl=3600, max_age=0.5)
    for n in range(150):
        queue.publish({"id": f"old{n}"})
    time.sleep(0.6)
    for n in range(150):
        queue.publish({"id": f"new{n}"})
    remaining = [entry.alert["id"] for entry in queue.read()]
    old = [a for a in remaining if a.startswith("old")]
    # "~" trims whole stream nodes (100 entries): the node of old0..old99 is gone
    assert len(old) <= 50 and remaining[-1] == "new149" and len(remaining) - len(old) == 150


def test_drain_returns_every_stale_alert_and_drops_trimmed_ones(client: redis.Redis) -> None:
    ids = publish(client, 25)
    gone = AlertConsumer(client, group="bots", consumer="gone", batch=25, claim_idle=0.05)
    assert len(gone.poll()) == 25  # read, never acked
    client.xdel(Keys().alerts, client.xrange(Keys().alerts, count=1)[0][0])  # one trimmed
    time.sleep(0.1)
    survivor = AlertConsumer(client, group="bots", consumer="s", batch=10, claim_idle=0.05)
    drained = [d.value["id"] for d in survivor.drain()]
    assert drained == ids[1:]  # all 24 left, in three claim batches; the trimmed one is acked
    for delivery_id in drained:
        assert delivery_id
    assert client.xpending(Keys().alerts, "bots")["pending"] == 24
