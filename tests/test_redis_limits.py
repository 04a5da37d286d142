"""Redis limits, loudly: an evicting Redis refused at start, evictions while running
reported, and health that turns unhealthy while Redis refuses writes, then recovers."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from structlog.testing import capture_logs

from monitor.config import DaemonSettings, Settings
from monitor.daemon import FAILING_AFTER, STALE_AFTER
from monitor.daemon import Daemon as DaemonLoop
from monitor.errors import RedisEvicts
from monitor.ingest.items import ItemsQueue
from monitor.model import Item
from monitor.store.connection import connect
from monitor.store.keys import Keys
from monitor.store.redisguard import EvictionWatch, check_eviction, write_refusal

from .conftest import ROOT, RULES
from .feedserver import FeedServer
from .processes import Daemon, wait_for
from .test_cli import monitor
from .test_daemon import alerts, config, serve_sample
from .test_faults import RedisProcess, run_to_the_end, synthetic_feed


@pytest.mark.slow
def test_an_evicting_redis_is_refused_at_start_unless_allowed(
    redis_with: Callable[..., RedisProcess], feed_server: FeedServer, tmp_path: Path
) -> None:
    lru = redis_with("--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru")
    serve_sample(feed_server)
    cfg = config(tmp_path, feed_server)
    for command in (
        ["run"],
        ["replay"],
        ["consume", "--from-start"],
        ["forward", "--webhook", "http://127.0.0.1:1/"],
    ):
        done = monitor("--config", str(cfg), *command, cwd=ROOT, redis_url=lru.url)
        assert done.returncode == 2, (command, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, lines  # one line: why, and how to fix it
        why = "(maxmemory-policy allkeys-lru, maxmemory 104857600 bytes)"
        assert lines[0].startswith(f"monitor: error: Redis at {lru.url} may evict keys {why}")
        assert "maxmemory-policy noeviction" in lines[0]
        assert "redis_allow_eviction = true" in lines[0]
    assert lru.client().dbsize() == 0  # refused before writing anything

    (tmp_path / "allow.toml").write_text("redis_allow_eviction = true\n" + cfg.read_text())
    allowed = monitor(
        "--config", str(tmp_path / "allow.toml"), "replay", cwd=ROOT, redis_url=lru.url
    )
    assert allowed.returncode == 0, allowed.stderr
    assert '"event": "redis_may_evict"' in allowed.stderr
    assert "1 alert published" in allowed.stdout

    status = monitor("status", cwd=ROOT, redis_url=lru.url)  # shows it, does not refuse
    assert status.returncode == 0, status.stderr
    assert "Redis maxmemory-policy: allkeys-lru" in status.stdout


def test_volatile_policies_are_refused_too_and_noeviction_passes(
    redis_with: Callable[..., RedisProcess],
) -> None:
    server = redis_with("--maxmemory-policy", "volatile-ttl")
    client = server.client()
    with pytest.raises(RedisEvicts, match=r"maxmemory-policy volatile-ttl, no maxmemory yet"):
        check_eviction(client, allow=False, where="here")
    client.config_set("maxmemory-policy", "noeviction")
    with capture_logs() as logs:
        check_eviction(client, allow=False, where="here")
    assert logs == []


def test_what_could_not_be_checked_is_said_when_config_and_info_are_refused(
    redis_with: Callable[..., RedisProcess],
) -> None:
    server = redis_with(
        "--user",
        "default",
        "off",
        "--user",
        "monitor",
        "on",
        ">pw",
        "~monitor:*",
        "+@all",
        "-@dangerous",
    )
    client = redis.Redis(
        unix_socket_path=str(server.socket),
        username="monitor",
        password="pw",
        decode_responses=True,
    )
    with capture_logs() as logs:
        check_eviction(client, allow=False, where="here")
        assert EvictionWatch(client).check() == 0
    assert [e["event"] for e in logs] == ["redis_policy_unchecked", "redis_evictions_unwatched"]
    reason = logs[0]["reason"]
    assert reason.startswith("could not check that Redis does not evict keys: CONFIG GET (")
    assert "INFO memory (" in reason and reason.endswith("make sure maxmemory-policy is noeviction")


def test_evictions_while_running_are_an_error_with_the_count(
    redis_with: Callable[..., RedisProcess],
) -> None:
    server = redis_with("--maxmemory-policy", "allkeys-random")
    client = server.client()
    watch = EvictionWatch(client)
    assert watch.check() == 0  # the first reading
    client.set("monitor:x", "y" * 100_000)
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", used + 50_000)
    for n in range(20):  # each write needs room: Redis evicts keys to make it
        client.set(f"monitor:filler:{n}", "z" * 30_000)
    with capture_logs() as logs:
        evicted = watch.check()
    assert evicted >= 1
    assert logs[0]["event"] == "redis_evicted_keys" and logs[0]["log_level"] == "error"
    assert logs[0]["evicted"] == evicted
    assert watch.check() == 0  # nothing more since


def test_write_refusals_are_recognised_also_inside_scripts(
    redis_with: Callable[..., RedisProcess],
) -> None:
    server = redis_with("--maxmemory-policy", "noeviction")
    client = server.client()
    client.set("monitor:big", "x" * 200_000)
    client.config_set("maxmemory", int(client.info("memory")["used_memory"]) - 1000)
    with pytest.raises(redis.ResponseError) as plain:
        client.set("monitor:more", "y")
    script = client.register_script("return redis.call('SET', KEYS[1], 'y')")
    with pytest.raises(redis.ResponseError) as scripted:
        script(keys=["monitor:more"])
    for exc in (plain.value, scripted.value):
        assert write_refusal(exc) == "out of memory (maxmemory reached, OOM)", str(exc)
    assert write_refusal(redis.ResponseError("WRONGTYPE Operation")) is None
    assert client.ping()  # Redis answers: only writes are refused


OOM_SECONDS = float(os.environ.get("FAULT_OOM_SECONDS", "5"))  # 60 for the long run
OOM_ITEMS = int(os.environ.get("FAULT_OOM_ITEMS", "300"))  # a multiple of 5; 1000 for it


def _health(base: str) -> tuple[int, dict]:
    reply = httpx.get(f"{base}/healthz", timeout=5)
    return reply.status_code, reply.json()


def _synthetic(tmp_path: Path, feed_server: FeedServer, stories: int) -> Path:
    body, rules = synthetic_feed(stories=stories, per_story=5)
    feed_server.static("/feed.xml", body)
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir(exist_ok=True)
    for n, rule in enumerate(rules):
        (rules_dir / f"r{n}.yaml").write_text(rule)
    return rules_dir


@pytest.mark.slow
def test_out_of_memory_is_unhealthy_within_seconds_then_drains_at_once_losing_nothing(
    redis_with: Callable[..., RedisProcess],
    feed_server: FeedServer,
    daemons: Callable[..., Daemon],
    tmp_path: Path,
) -> None:
    server = redis_with("--maxmemory-policy", "noeviction")
    client = server.client()
    items = OOM_ITEMS
    rules = _synthetic(tmp_path, feed_server, stories=items // 5)
    cfg = config(tmp_path, feed_server, rules=rules, listen="127.0.0.1:0", claim_idle=60)
    undisturbed = run_to_the_end(daemons(cfg, server.url), client, items)
    assert len(undisturbed) > 10

    client.flushall()
    daemon = daemons(cfg, server.url)
    wait_for(lambda: daemon.events("http_listening"))
    base = f"http://{daemon.events('http_listening')[0]['address']}"
    wait_for(lambda: client.exists(Keys().items) and client.xlen(Keys().items) == items)
    wait_for(lambda: len(daemon.events("item_processed")) >= 20, 60)
    assert _health(base)[0] == 200

    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", used // 2)  # full: every write is refused from now on
    full = time.monotonic()
    while (reply := _health(base))[0] == 200:
        assert time.monotonic() - full < 10, "still healthy 10 s into OOM"
        time.sleep(0.05)
    unhealthy_after = time.monotonic() - full
    code, info = reply
    assert code == 503 and info["redis"] is True and info["redis_writable"] is False
    assert info["reason"] == "Redis refuses writes: out of memory (maxmemory reached, OOM)"
    time.sleep(OOM_SECONDS)
    done_then = {e["item"] for e in daemon.events("item_processed")}
    queue = ItemsQueue(client, Keys(), maxlen=10**6)
    waiting, in_hand = queue.lag()
    metrics = httpx.get(f"{base}/metrics").text
    assert "monitor_redis_writable 0.0" in metrics
    assert 'monitor_redis_write_refusals_total{reason="out of memory' in metrics
    assert "monitor_healthy 0.0" in metrics
    assert 'monitor_polls_total{result="deferred"}' in metrics  # no poll while writes fail
    assert httpx.get(f"{base}/livez").status_code == 200  # alive: a restart would not help
    assert len(daemon.events("redis_refuses_writes")) == 1  # said once, not per item
    assert not daemon.events("item_failed")  # not the items' fault: none counted as failed
    assert 0 < len(done_then) < items

    client.config_set("maxmemory", 0)
    freed = time.monotonic()
    wait_for(lambda: _health(base)[0] == 200, 10)
    healthy_after = time.monotonic() - freed
    wait_for(lambda: queue.lag() == (0, 0), 60)
    drained_after = time.monotonic() - freed
    assert daemon.stop() == 0
    processed = [e["item"] for e in daemon.events("item_processed")]
    assert len(processed) == len(set(processed)) == items  # each exactly once
    assert client.xlen(Keys().items_dead) == 0  # no item dead-lettered
    disturbed = [a["id"] for a in alerts(client)]
    assert sorted(disturbed) == sorted(undisturbed)  # nothing lost, nothing doubled
    assert len(daemon.events("redis_writable_again")) == 1
    print(
        f"OOM {OOM_SECONDS:g} s: /healthz 503 after {unhealthy_after:.2f} s; 200 again "
        f"{healthy_after:.2f} s after memory was freed; backlog of {items - len(done_then)} "
        f"items ({in_hand} in hand, {waiting} unread) drained in {drained_after:.2f} s; "
        f"{len(disturbed)} alerts as undisturbed; 0 lost, 0 doubled"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Callable[[str], DaemonLoop]]:
    """A Daemon object whose processing loop runs in a thread (no polling, no HTTP)."""
    loops: list[tuple[DaemonLoop, threading.Thread]] = []

    def start(url: str) -> DaemonLoop:
        settings = Settings(redis_url=url, rules_dir=RULES, daemon=DaemonSettings(listen=""))
        daemon = DaemonLoop(settings, connect(url))
        daemon.items.ensure_group()
        thread = threading.Thread(target=daemon.worker.loop, daemon=True)
        thread.start()
        loops.append((daemon, thread))
        return daemon

    yield start
    for daemon, thread in loops:
        daemon.stop.set()
        thread.join(10)


def _item(n: int) -> Item:
    text = " ".join(f"word{n}x{k}" for k in range(60))
    return Item(guid=f"g{n}", url="", title=f"title {n}", source="s", feed="f", content=text)


@pytest.mark.slow
def test_health_says_read_only_replica_and_items_failing_in_a_row_and_recovers(
    redis_with: Callable[..., RedisProcess], running: Callable[[str], DaemonLoop]
) -> None:
    redis_with("--port", str(port := _free_port()), "--bind", "127.0.0.1")  # a primary
    server = redis_with("--maxmemory-policy", "noeviction")
    client = server.client()
    daemon = running(server.url)
    assert daemon.health()[0] is True

    client.replicaof("127.0.0.1", port)  # a failover made this node a replica
    ok, info = daemon.health()
    assert not ok and info["reason"] == "Redis refuses writes: read-only replica (READONLY)"
    assert daemon.liveness()[0] is True  # waiting for Redis: a restart would not help
    assert info["redis"] is True and info["redis_writable"] is False
    client.replicaof("no", "one")
    wait_for(lambda: daemon.health()[0], 10)  # by itself, once a write succeeds again
    assert daemon.metrics.refusals.labels("read-only replica (READONLY)")._value.get() == 1

    # Items that fail one after the other (here: their index entries are of the wrong type).
    queue, keys = daemon.items, Keys()
    broken = [_item(n) for n in range(FAILING_AFTER)]
    for item in broken:
        client.set(keys.entry(item.id), "not a hash")
    queue.append(broken)
    wait_for(lambda: daemon.state.failures_in_a_row >= FAILING_AFTER, 60)  # a loaded machine
    ok, info = daemon.health()
    assert not ok and info["reason"] == f"{FAILING_AFTER} items failed in a row"
    queue.append([_item(99)])  # one that goes through: healthy again
    wait_for(lambda: daemon.health()[0], 20)

    assert daemon.liveness()[0] is True
    daemon.state.last_tick -= STALE_AFTER  # as if the loop had been stuck in one item for that long
    assert daemon.liveness()[0] is False
    daemon.stop.set()
    ok, info = daemon.health()
    assert not ok and "processing loop has not turned for" in info["reason"]
    assert info["reason"].endswith("; stopping")


@pytest.mark.slow
def test_a_running_daemon_reports_keys_evicted_meanwhile(
    redis_with: Callable[..., RedisProcess], running: Callable[[str], DaemonLoop]
) -> None:
    server = redis_with("--maxmemory-policy", "noeviction")
    client = server.client()
    with capture_logs() as logs:
        daemon = running(server.url)  # accepted at start...
        wait_for(lambda: client.exists(Keys().daemon(daemon.instance)))
        client.config_set("maxmemory-policy", "allkeys-random")  # ...then someone changes it
        client.set("monitor:x", "y" * 100_000)
        client.config_set("maxmemory", int(client.info("memory")["used_memory"]) + 50_000)
        for n in range(20):
            client.set(f"monitor:filler:{n}", "z" * 30_000)
        evicted_at = time.monotonic()
        wait_for(lambda: any(e["event"] == "redis_evicted_keys" for e in logs), 15)
        said_after = time.monotonic() - evicted_at
    (event,) = [e for e in logs if e["event"] == "redis_evicted_keys"]
    assert event["log_level"] == "error" and event["evicted"] >= 1
    assert daemon.metrics.evicted._value.get() == event["evicted"]
    print(
        f"policy changed to allkeys-random while running: {event['evicted']} keys evicted, "
        f"redis_evicted_keys error {said_after:.1f} s later"
    )
