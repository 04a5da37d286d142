"""A failover pair watched by Sentinel (the shipped redis-server, on loopback): the monitor
reaches the master through `redis+sentinel://` URLs, and after a failover the same client
writes to the new master."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from monitor.store.connection import connect, is_cluster
from monitor.store.embedded import find_redis_server
from monitor.store.keys import Keys
from monitor.store.localcluster import free_ports

from .conftest import RULES, SAMPLE_FEEDS
from .processes import wait_for
from .test_cli import monitor


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[int, int, int, subprocess.Popen]]:
    """(master port, replica port, sentinel port, the master's process), the sentinel
    watching `mymaster`."""
    master, replica, sentinel = free_ports(3)
    binary = str(find_redis_server())
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)]
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {sentinel}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor mymaster 127.0.0.1 {master} 1\n"
        "sentinel down-after-milliseconds mymaster 1000\n"
        "sentinel failover-timeout mymaster 5000\n"
    )
    procs = [
        subprocess.Popen([binary, "--port", str(master), *common], stdout=subprocess.DEVNULL),
        subprocess.Popen(
            [binary, "--port", str(replica), *common, "--replicaof", "127.0.0.1", str(master)],
            stdout=subprocess.DEVNULL,
        ),
    ]
    try:
        wait_for(lambda: _up(replica) and _info(replica)["master_link_status"] == "up")
        procs.append(subprocess.Popen([binary, str(conf), "--sentinel"], stdout=subprocess.DEVNULL))
        wait_for(lambda: _up(sentinel) and _replicas_seen(sentinel))
        yield master, replica, sentinel, procs[0]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def _up(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port).ping())
    except redis.ConnectionError:
        return False


def _info(port: int) -> dict:
    return redis.Redis(port=port, decode_responses=True).info("replication")


def _replicas_seen(sentinel: int) -> bool:
    found = redis.Redis(port=sentinel, decode_responses=True).sentinel_slaves("mymaster")
    return any(r.get("master-link-status") == "ok" for r in found)


@pytest.mark.slow
def test_the_seed_replay_through_sentinel_and_a_failover(
    pair: tuple[int, int, int, subprocess.Popen], tmp_path: Path
) -> None:
    master, replica, sentinel, process = pair
    url = f"redis+sentinel://127.0.0.1:{sentinel}/mymaster"
    run = monitor("replay", "--rules", str(RULES), str(SAMPLE_FEEDS), cwd=tmp_path, redis_url=url)
    assert run.returncode == 0, run.stderr
    assert "1 alert published" in run.stdout
    assert redis.Redis(port=master).xlen(Keys().alerts) == 1

    client = connect(url)
    assert not is_cluster(client)
    client.set("monitor:before-failover", "1")
    process.kill()  # the master dies; the sentinel promotes its replica
    wait_for(lambda: _info(replica)["role"] == "master", timeout=30)
    deadline = time.monotonic() + 30
    while True:  # the same client finds the new master (through the sentinel) by itself
        try:
            client.set("monitor:after-failover", "1")
            break
        except (redis.ConnectionError, redis.ReadOnlyError, redis.TimeoutError):
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert redis.Redis(port=replica).get("monitor:after-failover") == b"1"
    assert redis.Redis(port=replica).xlen(Keys().alerts) == 1  # replicated before


def test_a_sentinel_url_that_names_no_known_service(
    pair: tuple[int, int, int, subprocess.Popen], tmp_path: Path
) -> None:
    run = monitor(
        "replay",
        "--rules",
        str(RULES),
        str(SAMPLE_FEEDS),
        cwd=tmp_path,
        redis_url=f"redis+sentinel://127.0.0.1:{pair[2]}/nosuch",
    )
    assert run.returncode == 2
    assert "no Sentinel at redis+sentinel://127.0.0.1" in run.stderr and "'nosuch'" in run.stderr
