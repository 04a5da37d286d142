"""The embedded redis-server: starts on a unix socket, persists, stops, is reused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis

from monitor.errors import RedisUnavailable
from monitor.store.connection import connect
from monitor.store.embedded import EmbeddedRedis, find_redis_server
from monitor.store.keys import Keys


def test_data_survives_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "state"
    with EmbeddedRedis(data) as url:
        client = connect(url)
        client.xadd(Keys().alerts, {"alert": "{}"})
        client.close()
    assert not (data / "redis.sock").exists()
    with EmbeddedRedis(data) as url:
        assert connect(url).xlen(Keys().alerts) == 1


def test_last_one_out_shuts_the_server_down(tmp_path: Path) -> None:
    daemon = EmbeddedRedis(tmp_path)
    url = daemon.start()
    connection = connect(url)  # a long-running command holds a connection
    with EmbeddedRedis(tmp_path) as inner_url:  # a second command reuses the server
        assert inner_url == url
    assert connection.ping()  # ...and leaves it running for the first
    connection.close()
    daemon.stop()
    assert not (tmp_path / "redis.sock").exists()

    consumer = EmbeddedRedis(tmp_path)  # the other order: the short command starts it
    url = consumer.start()
    daemon = EmbeddedRedis(tmp_path)
    assert daemon.start() == url
    connection = connect(url)
    consumer.stop()  # exits first, but the daemon is connected
    assert connection.ping()
    connection.close()
    daemon.stop()  # last out
    assert not (tmp_path / "redis.sock").exists()


def test_binary_is_found() -> None:
    assert find_redis_server().name == "redis-server"


def test_unreachable_redis_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RedisUnavailable, match="cannot reach Redis"):
        connect(f"unix://{tmp_path}/none.sock")
    with pytest.raises(RedisUnavailable, match=re.escape("redis://***@127.0.0.1:1")):
        connect("redis://user:secret@127.0.0.1:1/0")  # and the password is not shown
    assert not isinstance(RedisUnavailable("x"), redis.RedisError)
