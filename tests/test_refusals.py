"""Redis's refusals classified alike whether they come from a plain command, a script or a
pipeline, on real redis-servers (an out-of-memory one, a replica, an ACL user)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis
from structlog.testing import capture_logs

from monitor.config import FeedConfig, Settings, WebSettings
from monitor.daemon.health import Health
from monitor.daemon.metrics import Metrics
from monitor.delivery.sinks.runner import serve
from monitor.ingest.poll import feed_id
from monitor.store.connection import run
from monitor.store.keys import Keys
from monitor.store.redisguard import write_refusal
from monitor.store.refusals import Kind, Refusal, first_refusal, refusal

from .conftest import ROOT
from .feedserver import FeedServer
from .processes import Daemon, wait_for
from .test_cli import monitor
from .test_daemon import config
from .test_faults import RedisProcess, synthetic_feed
from .test_redis_limits import (
    _free_port,
    _health,
)
from .test_sinks import _close_sinks, make_alert, publish, runner, sink  # noqa: F401 (closes sinks)
from .test_web import TOKEN

WRITE = "return redis.call('SET', KEYS[1], ARGV[1])"


def _three_ways(client: redis.Redis, key: str) -> list[BaseException | object]:
    """The refusal of a write as a plain command, in a script, and in a pipeline (raised,
    and in place of its reply)."""
    found: list[BaseException | object] = []
    for attempt in (
        lambda: client.set(key, "v"),
        lambda: client.eval(WRITE, 1, key, "v"),
        lambda: run(client, [(("EVAL", WRITE, 1, key, "v"), {})]),
    ):
        with pytest.raises(redis.RedisError) as caught:
            attempt()
        found.append(caught.value)
    found.append(run(client, [(("SET", key, "v"), {})], raise_on_error=False))
    return found


def test_out_of_memory_is_one_refusal_from_a_command_a_script_and_a_pipeline(
    redis_with: Callable[..., RedisProcess],
) -> None:
    client = redis_with("--maxmemory-policy", "noeviction").client()
    client.set("big", "x" * 200_000)
    client.config_set("maxmemory", int(client.info("memory")["used_memory"]) - 1000)
    for error in _three_ways(client, "more"):
        assert refusal(error) == Refusal(Kind.OOM, "out of memory (maxmemory reached, OOM)")
    assert client.ping()


def test_a_replica_refuses_from_a_command_a_script_and_a_pipeline(
    redis_with: Callable[..., RedisProcess],
) -> None:
    redis_with("--port", str(port := _free_port()), "--bind", "127.0.0.1")
    client = redis_with().client()
    client.replicaof("127.0.0.1", port)
    for error in _three_ways(client, "k"):
        assert refusal(error) == Refusal(Kind.READONLY, "read-only replica (READONLY)")
    assert write_refusal(_three_ways(client, "k")[1]) == "read-only replica (READONLY)"  # type: ignore[arg-type]


def test_an_acl_user_without_a_command_is_denied_also_inside_a_script(
    redis_with: Callable[..., RedisProcess],
) -> None:
    server = redis_with()
    admin = server.client()
    admin.acl_setuser(
        "reader", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-set"]
    )
    client = redis.Redis(
        unix_socket_path=admin.connection_pool.connection_kwargs["path"],
        username="reader",
        password="pw",
    )
    for error in _three_ways(client, "k"):
        found = refusal(error)
        assert found is not None and found.kind is Kind.ACL, error
        assert "NOPERM" in found.reason and "\n" not in found.reason
    with pytest.raises(redis.AuthenticationError) as wrong:
        redis.Redis(
            unix_socket_path=admin.connection_pool.connection_kwargs["path"],
            username="reader",
            password="bad",
        ).ping()
    found = refusal(wrong.value)
    assert found is not None and found.kind is Kind.ACL and found.writes_refused
    stranger = redis.Redis(unix_socket_path=str(server.socket), username="reader", password="bad")
    ok, info = Health(Metrics(), "test").health(stranger, lambda: None)
    assert not ok and info["reason"].startswith(
        "Redis unreachable: Redis denied the command to this user (NOAUTH/WRONGPASS: "
    )


def test_noscript_from_evalsha_alone_and_in_a_pipeline(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    sha = "0" * 40
    with pytest.raises(redis.exceptions.NoScriptError) as alone:
        client.evalsha(sha, 0)
    replies = run(client, [(("PING",), {}), (("EVALSHA", sha, 0), {})], raise_on_error=False)
    for error in (alone.value, replies):
        assert refusal(error) == Refusal(Kind.NOSCRIPT, "script not loaded (NOSCRIPT)")
        assert not refusal(error).writes_refused  # type: ignore[union-attr]
    assert write_refusal(alone.value) is None  # it passes by itself: the script is loaded


def test_misconf_from_a_failing_snapshot(redis_with: Callable[..., RedisProcess]) -> None:
    """A snapshot that cannot be written (its file's place is a directory) stops writes."""
    server = redis_with()
    client = server.client()
    client.config_set("save", "3600 1")  # snapshots configured: their failure stops writes
    client.config_set("stop-writes-on-bgsave-error", "yes")
    (server.directory / "broken.rdb").mkdir()
    client.config_set("dbfilename", "broken.rdb")
    client.bgsave()
    wait_for(lambda: client.info("persistence")["rdb_last_bgsave_status"] == "err", 10)
    for error in _three_ways(client, "k"):
        assert refusal(error) == Refusal(Kind.MISCONF, "persistence failing (MISCONF)"), error
    client.config_set("save", "")  # else the server, stopped, saves (and fails) again


def test_texts_of_every_kind_and_what_is_no_refusal() -> None:
    script = "Error running script (call to f_33bc): @user_script:15: -{} on @user_script:15."
    cases = {
        "OOM command not allowed when used memory > 'maxmemory'": Kind.OOM,
        "READONLY You can't write against a read only replica.": Kind.READONLY,
        "MISCONF Redis is configured to save RDB snapshots, but it's unable": Kind.MISCONF,
        "NOSCRIPT No matching script.": Kind.NOSCRIPT,
        "MOVED 3999 127.0.0.1:6381": Kind.REDIRECT,
        "ASK 3999 127.0.0.1:6381": Kind.REDIRECT,
        "CLUSTERDOWN The cluster is down": Kind.REDIRECT,
        "TRYAGAIN Multiple keys request during rehashing of slot": Kind.REDIRECT,
        "NOPERM User u has no permissions to run the 'set' command": Kind.ACL,
        "NOAUTH Authentication required.": Kind.ACL,
        "WRONGPASS invalid username-password pair or user is disabled.": Kind.ACL,
    }
    for text, kind in cases.items():
        for error in (redis.ResponseError(text), redis.ResponseError(script.format(text))):
            found = refusal(error)
            assert found is not None and found.kind is kind, text
    for other in (
        redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind"),
        redis.ResponseError("ERR user_script:3: please ASK the operator"),
        redis.ConnectionError("Connection refused"),
        ValueError("OOM"),
        "OOM",
    ):
        assert refusal(other) is None, other
    assert first_refusal([1, redis.ResponseError("WRONGTYPE x"), None]) is None
    assert refusal(redis.exceptions.MovedError("3999 127.0.0.1:6381")).kind is Kind.REDIRECT  # type: ignore[union-attr]


@pytest.mark.slow
def test_polls_refused_out_of_memory_make_the_daemon_unhealthy_then_resume_losing_nothing(
    redis_with: Callable[..., RedisProcess],
    feed_server: FeedServer,
    daemons: Callable[..., Daemon],
    tmp_path: Path,
) -> None:
    """As an operator met it: Redis has room for small writes (the heartbeat passes) but not
    for a poll's append of its items (a script with megabytes of arguments)."""
    server = redis_with("--maxmemory", "4mb", "--maxmemory-policy", "noeviction")
    client = server.client()
    small, _ = synthetic_feed(stories=1, per_story=1)
    feed_server.static("/feed.xml", small)
    cfg = config(tmp_path, feed_server, listen="127.0.0.1:0")
    daemon = daemons(cfg, server.url)
    wait_for(lambda: len(daemon.events("item_processed")) == 1)
    base = f"http://{daemon.events('http_listening')[0]['address']}"
    assert _health(base)[0] == 200

    big, _ = synthetic_feed(stories=60, per_story=5)  # item-0 again, and 299 new
    maxmemory = int(client.info("memory")["maxmemory"])
    n = 0  # fill by small keys until less room is left than the new items' JSON takes
    while int(client.info("memory")["used_memory"]) < maxmemory - len(big) // 2:
        client.set(f"ballast:{n}", "x" * 20_000)
        n += 1
    feed_server.static("/feed.xml", big)
    served = time.monotonic()
    while (reply := _health(base))[0] == 200:
        assert time.monotonic() - served < 30, "still healthy 30 s into OOM"
        time.sleep(0.1)
    unhealthy_after = time.monotonic() - served
    code, info = reply
    assert code == 503 and info["redis"] is True and info["redis_writable"] is False
    assert info["reason"] == "Redis refuses writes: out of memory (maxmemory reached, OOM)"
    time.sleep(3)  # polls go on being refused meanwhile
    assert _health(base)[0] == 503
    assert client.set("small", "still fits")  # a small write passes: the polls told
    assert daemon.events("poll_deferred")
    assert not daemon.events("poll_failed") and not daemon.events("item_failed")
    assert all(e["errors"] == 0 for e in daemon.events("feed_polled"))  # not the feed's fault
    assert "monitor_items_failed_total 0.0" in httpx.get(f"{base}/metrics").text

    client.config_set("maxmemory", 0)
    freed = time.monotonic()
    wait_for(lambda: _health(base)[0] == 200, 30)
    healthy_after = time.monotonic() - freed
    wait_for(lambda: len(daemon.events("item_processed")) == 300, 120)
    assert daemon.stop() == 0
    processed = [e["item"] for e in daemon.events("item_processed")]
    assert len(processed) == len(set(processed)) == 300  # each exactly once, none lost
    assert len(daemon.events("redis_refuses_writes")) == 1
    assert len(daemon.events("redis_writable_again")) == 1
    print(
        f"polls refused OOM: /healthz 503 {unhealthy_after:.2f} s after the feed grew; "
        f"200 again {healthy_after:.2f} s after maxmemory was raised"
    )


def test_the_desk_says_redis_refuses_writes_with_a_503_page(
    redis_with: Callable[..., RedisProcess], desk
) -> None:
    server = redis_with("--maxmemory-policy", "noeviction")
    feed = FeedConfig(url="http://127.0.0.1:1/feed.xml", name="sample")
    settings = Settings(redis_url=server.url, feeds=(feed,), web=WebSettings(token=TOKEN))
    client = server.client()
    web = desk(settings, client)
    assert web.post("/login", data={"token": TOKEN}, follow_redirects=False).status_code == 303
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', web.get("/feeds").text)
    assert csrf
    client.set("big", "x" * 200_000)
    client.config_set("maxmemory", int(client.info("memory")["used_memory"]) - 1000)
    refused = web.post(f"/feeds/{feed_id(feed)}/pause", data={"csrf": csrf[1]})
    assert refused.status_code == 503 and refused.headers["retry-after"] == "30"
    assert "Redis refuses writes: out of memory (maxmemory reached, OOM)" in refused.text
    assert "Nothing was changed" in refused.text
    assert web.get("/feeds").status_code == 200  # reading goes on
    client.config_set("maxmemory", 0)
    done = web.post(f"/feeds/{feed_id(feed)}/pause", data={"csrf": csrf[1]}, follow_redirects=True)
    assert done.status_code == 200 and "paused" in done.text


def test_a_sink_on_a_replica_stops_saying_redis_refuses_writes(
    redis_with: Callable[..., RedisProcess],
) -> None:
    primary = redis_with("--port", str(port := _free_port()), "--bind", "127.0.0.1")
    publish(primary.client(), make_alert(1))
    replica = redis_with().client()
    replica.replicaof("127.0.0.1", port)
    wait_for(lambda: replica.exists(Keys().alerts) == 1, 10)
    made = runner(replica, sink("hook", "webhook", "http://127.0.0.1:1/hook"))
    with capture_logs() as logs:
        serve([made], follow=False)
    assert made.error == "Redis refuses writes: read-only replica (READONLY)"
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["sink_redis_refused"]


def test_a_command_on_a_replica_says_redis_refuses_writes(
    redis_with: Callable[..., RedisProcess],
) -> None:
    redis_with("--port", str(port := _free_port()), "--bind", "127.0.0.1")
    replica = redis_with()
    replica.client().replicaof("127.0.0.1", port)
    done = monitor("replay", cwd=ROOT, redis_url=replica.url)
    assert done.returncode == 3, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "monitor: error: Redis refuses writes: read-only replica (READONLY)"
    )
