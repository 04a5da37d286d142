"""Redis limits, loudly: an evicting Redis refused at start, evictions while running
reported, and health that turns unhealthy while Redis refuses writes, then recovers."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from structlog.testing import capture_logs

from monitor.errors import RedisEvicts
from monitor.redisguard import EvictionWatch, check_eviction, write_refusal

from .conftest import ROOT
from .feedserver import FeedServer
from .test_cli import monitor
from .test_daemon import config, serve_sample
from .test_faults import RedisProcess


@pytest.fixture
def redis_with() -> Iterator[Callable[..., RedisProcess]]:
    """Starts a redis-server of its own with extra options (AOF on)."""
    started: list[RedisProcess] = []

    def start(*options: str) -> RedisProcess:
        server = RedisProcess(Path(tempfile.mkdtemp(prefix="monitor-lim-")), *options)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)


def test_an_evicting_redis_is_refused_at_start_unless_allowed(
    redis_with: Callable[..., RedisProcess], feed_server: FeedServer, tmp_path: Path
) -> None:
    lru = redis_with("--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru")
    serve_sample(feed_server)
    cfg = config(tmp_path, feed_server)
    for command in (["run"], ["replay"], ["consume", "--from-start"], ["forward", "--webhook",
                    "http://127.0.0.1:1/"]):  # fmt: skip
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
    allowed = monitor("--config", str(tmp_path / "allow.toml"), "replay", cwd=ROOT,
                      redis_url=lru.url)  # fmt: skip
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
    server = redis_with("--user", "default", "off", "--user", "monitor", "on", ">pw",
                        "~monitor:*", "+@all", "-@dangerous")  # fmt: skip
    client = redis.Redis(unix_socket_path=str(server.socket), username="monitor",
                         password="pw", decode_responses=True)  # fmt: skip
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
