"""The embedded redis-server: starts on a unix socket, persists, stops, is reused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis

from monitor.embedded import EmbeddedRedis, find_redis_server
from monitor.errors import RedisUnavailable
from monitor.queue import connect


def test_data_survives_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "state"
    with EmbeddedRedis(data) as url:
        client = connect(url)
        client.xadd("monitor:alerts", {"alert": "{}"})
        client.close()
    assert not (data / "redis.sock").exists()
    with EmbeddedRedis(data) as url:
        assert connect(url).xlen("monitor:alerts") == 1


def test_a_running_server_is_reused_and_left_running(tmp_path: Path) -> None:
    outer = EmbeddedRedis(tmp_path)
    url = outer.start()
    try:
        with EmbeddedRedis(tmp_path) as inner_url:
            assert inner_url == url
        assert connect(url).ping()  # the inner one did not stop it
    finally:
        outer.stop()


def test_binary_is_found() -> None:
    assert find_redis_server().name == "redis-server"


def test_unreachable_redis_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RedisUnavailable, match="cannot reach Redis"):
        connect(f"unix://{tmp_path}/none.sock")
    with pytest.raises(RedisUnavailable, match=re.escape("redis://***@127.0.0.1:1")):
        connect("redis://user:secret@127.0.0.1:1/0")  # and the password is not shown
    assert not isinstance(RedisUnavailable("x"), redis.RedisError)
