"""The monitor on a Redis Cluster of three masters (the shipped redis-server, on loopback):
any node's URL, keys laid out per slot, the same stories and alerts as on one server, the
daemon, consumer groups, dead letters, digests, the webhook forwarder and backfills.
The failover run (a master killed under a running daemon) is tests/test_failover.py."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
import redis
from redis.crc import key_slot

from monitor.delivery.consumer import AlertConsumer, dead_letters, requeue
from monitor.delivery.queue import AlertQueue
from monitor.delivery.sinks.digest import DigestStore
from monitor.sinkconfig import parse_schedule
from monitor.store.connection import connect, describe, is_cluster
from monitor.store.keys import Keys
from monitor.store.layout import LAYOUT, marker, migrate
from monitor.store.localcluster import LocalCluster

from .conftest import RULES, SAMPLE_FEEDS
from .feedserver import FeedServer, Reply
from .processes import wait_for
from .test_cli import json_lines, monitor
from .test_daemon import config, serve_sample


def slots(*names: str) -> set[int]:
    return {key_slot(name.encode()) for name in names}


def test_keys_that_one_script_or_transaction_touches_share_a_slot() -> None:
    keys = Keys()
    assert (
        len(
            slots(
                keys.alerts,
                keys.counter(keys.alerts),
                keys.alert_seen("a1"),
                keys.story_alerts("s1"),
                keys.alerts_dead,
                keys.alerts_requeued("bots"),
            )
        )
        == 1
    )
    assert len(slots(keys.items, keys.counter(keys.items), keys.items_dead)) == 1
    assert len(slots(keys.story("s1"), keys.story_summary("s1"), keys.story_activity("s1"))) == 1
    assert len(slots(keys.df(1), keys.df(2), keys.placements, keys.placing)) == 1
    assert (
        len(
            slots(
                keys.digest_window("ops", 60),
                keys.digest_windows("ops"),
                keys.digest_sent("ops"),
                keys.digest_lock("ops"),
            )
        )
        == 1
    )
    # ... and the rest spreads: items, stories, feeds are not tied to one slot
    assert len(slots(*(keys.entry(f"i{n}") for n in range(50)))) == 50
    assert len(slots(*(keys.story(f"s{n}") for n in range(50)))) == 50
    assert len(slots(*(keys.feed(f"f{n}") for n in range(50)))) == 50
    assert all(name.startswith("monitor:") for name in (keys.alert_seen("a"), keys.df(3)))


def test_every_node_url_gives_the_cluster(redis_cluster: LocalCluster, cluster_url: str) -> None:
    clients = [connect(f"redis://127.0.0.1:{port}") for port in redis_cluster.ports]
    assert all(is_cluster(c) for c in clients)
    for n in range(30):
        clients[n % 3].set(f"monitor:k{n}", n)
    assert [int(clients[(n + 1) % 3].get(f"monitor:k{n}")) for n in range(30)] == list(range(30))
    assert len({clients[0].keyslot(f"monitor:k{n}") for n in range(30)}) > 3


@pytest.mark.slow
def test_the_seed_replay_on_a_cluster(cluster_url: str, tmp_path: Path) -> None:
    args = ("replay", "--json", "--rules", str(RULES), str(SAMPLE_FEEDS))
    first = monitor(*args, "--fresh", cwd=tmp_path, redis_url=cluster_url)
    assert first.returncode == 0, first.stderr
    *items, last = json_lines(first.stdout)
    assert len(items) == 5 and len({i["story_id"] for i in items}) == 1
    assert last["summary"]["alerts_published"] == 1
    assert [a for i in items for a in i["alerts"]] and items[2]["rules"] == ["dprk-russia-treaty"]
    again = monitor(*args, cwd=tmp_path, redis_url=cluster_url)
    assert json_lines(again.stdout)[-1]["summary"]["alerts_published"] == 0

    read = monitor("consume", "--from-start", "--json", cwd=tmp_path, redis_url=cluster_url)
    (alert,) = json_lines(read.stdout)
    assert alert["rule"]["id"] == "dprk-russia-treaty" and alert["story"]["size"] >= 3
    backfill = monitor(
        "rules",
        "backfill",
        "dprk-russia-treaty",
        "--since",
        "10000d",
        "--rules",
        str(RULES),
        cwd=tmp_path,
        redis_url=cluster_url,
    )
    assert backfill.returncode == 0, backfill.stderr
    read = monitor("consume", "--from-start", "--json", cwd=tmp_path, redis_url=cluster_url)
    assert [a["id"] for a in json_lines(read.stdout)] == [alert["id"]]  # raised once, ever
    status = monitor("status", cwd=tmp_path, redis_url=cluster_url)
    assert status.returncode == 0 and "redis: redis://127.0.0.1:" in status.stdout
    cli = monitor("redis-cli", "XLEN", "monitor:alerts", cwd=tmp_path, redis_url=cluster_url)
    assert cli.stdout.strip() == "1", cli.stderr  # -c: wherever the stream lives


def test_the_desk_on_a_cluster(cluster_url: str, desk) -> None:
    from .test_web import replayed

    client = connect(cluster_url)
    web = desk(replayed(cluster_url, client), client)
    page = web.get("/")
    assert page.status_code == 200 and "5 reports" in page.text
    assert "dprk-russia-treaty" in web.get("/alerts").text


@pytest.mark.slow
def test_an_acl_user_on_a_cluster(
    redis_cluster: LocalCluster, cluster_url: str, tmp_path: Path
) -> None:
    # The user the operations guide gives, plus what redis-py's cluster client needs.
    for port in redis_cluster.ports:
        node = redis.Redis(port=port)
        node.acl_setuser(
            "plain",
            enabled=True,
            passwords=["+pw"],
            keys=["monitor:*"],
            commands=["+@all", "-@dangerous"],
        )
        node.acl_setuser(
            "member",
            enabled=True,
            passwords=["+pw"],
            keys=["monitor:*"],
            commands=["+@all", "-@dangerous", "+info", "+cluster|slots", "+cluster|myid"],
        )
    port = redis_cluster.ports[1]
    args = ("replay", "--rules", str(RULES), str(SAMPLE_FEEDS))
    ok = monitor(*args, cwd=tmp_path, redis_url=f"redis://member:pw@127.0.0.1:{port}")
    assert ok.returncode == 0, ok.stderr
    assert "1 alert published" in ok.stdout
    # Without INFO and CLUSTER the client cannot know it is a cluster: a readable refusal.
    refused = monitor(*args, cwd=tmp_path, redis_url=f"redis://plain:pw@127.0.0.1:{port}")
    assert refused.returncode == 3
    assert "this Redis is a Cluster node" in refused.stderr and "+cluster" in refused.stderr
    assert "pw" not in refused.stderr


def test_errors_of_a_cluster_in_words() -> None:
    moved = redis.exceptions.MovedError("10918 127.0.0.1:7002")
    assert "Cluster node" in describe(moved) and "10918 127.0.0.1:7002" in describe(moved)
    down = redis.exceptions.ClusterDownError("The cluster is down")
    assert "cluster is down" in describe(down).lower()


def test_consumer_groups_dead_letters_and_requeue_on_a_cluster(cluster_url: str) -> None:
    client = connect(cluster_url)
    queue = AlertQueue(client, Keys(), maxlen=1000, id_ttl=3600)
    for n in range(6):
        queue.publish({"id": f"a{n}", "story": {"id": f"s{n}"}})
    queue.publish({"id": "a0"})  # a repeat publishes nothing
    consumer = AlertConsumer(client, group="bots", consumer="b1")
    got = list(consumer.drain())
    assert [d.value["id"] for d in got if d.value] == [f"a{n}" for n in range(6)]
    consumer.dead_letter(got[0], "HTTP 410")
    for delivery in got[1:]:
        consumer.ack(delivery)
    assert [letter["id"] for letter in dead_letters(client)] == ["a0"]
    assert [m["id"] for m in requeue(client, group="bots")] == ["a0"]
    again = list(consumer.drain())
    assert [d.value["id"] for d in again if d.value] == ["a0"]
    consumer.ack(again[0])
    assert consumer.lag() == (0, 0)


def test_digest_windows_on_a_cluster(cluster_url: str) -> None:
    client = connect(cluster_url)
    store = DigestStore(client, Keys(), "ops", parse_schedule("1h"))
    start = store.add({"id": "a1", "created_at": "2026-12-01T10:05:00Z"}, now=0)
    store.add({"id": "a2", "created_at": "2026-12-01T10:20:00Z"}, now=0)
    window = store.window(start)
    assert [a["id"] for a in window.alerts] == ["a1", "a2"]
    store.mark_sent(window, now=start + 3600)
    assert store.waiting() == [] and start in store.sent()


def test_registry_remove_on_a_cluster(cluster_url: str) -> None:
    from monitor.config import FeedConfig
    from monitor.ingest.registry import FeedRegistry

    client = connect(cluster_url)
    registry = FeedRegistry(client, Keys())
    feed = FeedConfig(url="http://127.0.0.1:9/feed.xml", name="x")
    registry.add([feed])
    registry.pause(feed)
    assert registry.remove(feed) and registry.all() == [] and registry.paused() == set()


STORIES, REPORTS = 40, 8  # 320 dated reports


def dated_reports(path: Path) -> Path:
    """A feed of STORIES x REPORTS reports, each story told by REPORTS outlets in their own
    words within an hour, stories an hour apart, all within the last two days; one
    rule matches every story, one some of them."""
    rng = random.Random(19)
    syllable = "bcdfghklmnprstvz"
    filler = (
        "people officials residents statement morning local region area service "
        "spokesperson public council plans office told reporters"
    ).split()
    newest = datetime.now(UTC) - timedelta(minutes=5)
    items = []
    for s in range(STORIES):
        words = [
            "".join(rng.choice(syllable) + rng.choice("aeiou") for _ in range(4)) for _ in range(40)
        ]
        place, person = words[0].title(), words[1].title()
        for r in range(REPORTS):
            chosen = rng.sample(words[2:], 24) + rng.sample(filler, 8)
            rng.shuffle(chosen)
            text = (
                f"{person} said in {place} that "
                + ". ".join(" ".join(chosen[i : i + 8]) for i in range(0, 32, 8))
                + ". Bulletin."
            )
            when = newest - timedelta(hours=1.1 * (STORIES - s), minutes=7 * (REPORTS - r))
            items.append(
                f"<item><title>{escape(person + ' in ' + place + ': ' + ' '.join(chosen[:4]))}"
                f"</title><link>http://wire.example/{s}/{r}</link><guid>urn:{s}:{r}</guid>"
                f"<pubDate>{format_datetime(when)}</pubDate>"
                f"<content:encoded>{escape('<p>' + text + '</p>')}</content:encoded></item>"
            )
    path.write_text(
        '<?xml version="1.0"?><rss version="2.0" xmlns:content="http://purl.org/rss/1.0/'
        'modules/content/"><channel><title>wire</title><link>http://wire.example/</link>'
        f"<description>d</description>{''.join(items)}</channel></rss>"
    )
    return path


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_one_server_and_a_cluster_give_the_same_stories_and_alerts(
    redis_url: str, cluster_url: str, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "bulletin.yaml").write_text("id: bulletin\nname: Bulletin\nquery: bulletin\n")
    (rules / "council.yaml").write_text("id: council\nname: Council\nquery: council AND public\n")
    feed = dated_reports(tmp_path / "wire.xml")
    runs = {}
    for name, url in (("one server", redis_url), ("cluster", cluster_url)):
        out = monitor(
            "replay",
            "--json",
            "--fresh",
            "--rules",
            str(rules),
            str(feed),
            cwd=tmp_path,
            redis_url=url,
        )
        assert out.returncode == 0, out.stderr
        *items, _ = json_lines(out.stdout)
        consumed = monitor("consume", "--from-start", "--json", cwd=tmp_path, redis_url=url)
        runs[name] = (items, [a["id"] for a in json_lines(consumed.stdout)])
    (single, single_alerts), (spread, spread_alerts) = runs["one server"], runs["cluster"]
    assert len(single) == STORIES * REPORTS
    fields = ("guid", "story_id", "dedup", "duplicate_of", "rules", "alerts")
    assert [{k: i[k] for k in fields} for i in spread] == [
        {k: i[k] for k in fields} for i in single
    ]
    assert spread_alerts == single_alerts and len(single_alerts) >= STORIES
    partition = {}
    for item in single:
        partition.setdefault(item["story_id"], set()).add(item["guid"].split(":")[1])
    assert len(partition) >= STORIES * 0.9  # most stories found whole (the same on both)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_daemon_and_the_webhook_forwarder_on_a_cluster(
    cluster_url: str, feed_server: FeedServer, daemons, tmp_path: Path
) -> None:
    guids = serve_sample(feed_server)
    daemon = daemons(config(tmp_path, feed_server), cluster_url)
    wait_for(lambda: len(daemon.events("item_processed")) == len(guids), timeout=60)
    client = connect(cluster_url)
    wait_for(lambda: client.xlen(Keys().alerts) == 1, timeout=30)
    (alert,) = [json.loads(f["alert"]) for _, f in client.xrange(Keys().alerts)]
    assert alert["kind"] == "new" and alert["item"]["source"] == "The Korea Herald"
    assert daemon.stop() == 0

    feed_server.routes["/hook"] = lambda h: Reply(204)
    forward = monitor(
        "forward", "--webhook", feed_server.url("/hook"), cwd=tmp_path, redis_url=cluster_url
    )
    assert forward.returncode == 0, forward.stderr
    assert [json.loads(b)["id"] for b in feed_server.bodies] == [alert["id"]]


def test_keys_of_the_first_layout_are_renamed_once(client: redis.Redis) -> None:
    old = {
        "monitor:alerts:seq": "7",
        "monitor:alert:abc": "1-0",
        "monitor:story:s1:alerts": {"r:new": "i1"},
        "monitor:story:s1": {"i1": 1.0},
        "monitor:summary:s1": {"size": "1"},
        "monitor:df:g12": {"#documents": "3"},
        "monitor:digest:ops:waiting": {"3600": 3600.0},
        "monitor:feed:f1": {"url": "u"},
    }
    for name, value in old.items():
        if isinstance(value, str):
            client.set(name, value)
        elif all(isinstance(v, float) for v in value.values()):
            client.zadd(name, value)
        else:
            client.hset(name, mapping=value)
    keys = Keys()
    assert migrate(client, keys) == 7
    assert client.get(keys.counter(keys.alerts)) == "7"
    assert client.get(keys.alert_seen("abc")) == "1-0"
    assert client.hget(keys.story_alerts("s1"), "r:new") == "i1"
    assert client.zscore(keys.story("s1"), "i1") == 1.0
    assert client.hget(keys.df(12), "#documents") == "3"
    assert client.zscore(keys.digest_windows("ops"), "3600") == 3600.0
    assert client.exists("monitor:feed:f1")  # kept its name
    assert client.get(marker(keys)) == LAYOUT and migrate(client, keys) == 0
