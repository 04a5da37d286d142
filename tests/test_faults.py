"""Operational faults against `monitor run` as a process: Redis away at start, Redis restarted
mid-run, and the daemon SIGKILLed again and again during a 1,000-item run."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from monitor.ingest.items import ItemsQueue
from monitor.store.embedded import find_redis_server
from monitor.store.keys import Keys

from .feedserver import FeedServer, rss
from .processes import Daemon, wait_for
from .test_daemon import alerts, config, serve_sample


class RedisProcess:
    """A redis-server on a fixed unix socket with an append-only file, so that it can be
    stopped and started again with its data."""

    def __init__(self, directory: Path, *options: str) -> None:
        self.directory = directory
        self.options = list(options)  # more redis-server options, e.g. --maxmemory 10mb
        self.socket = directory / "redis.sock"
        self.url = f"unix://{self.socket}"
        self.process: subprocess.Popen | None = None

    def start(self) -> RedisProcess:
        self.process = subprocess.Popen(
            [
                str(find_redis_server()),
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.directory),
                *self.options,
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_for(self.answers, 10)
        return self

    def answers(self) -> bool:
        try:
            with redis.Redis(unix_socket_path=str(self.socket)) as client:
                return bool(client.ping())
        except redis.AuthenticationError:  # the default user is off: it answers all the same
            return True
        except (redis.ConnectionError, FileNotFoundError):
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # redis-server flushes the AOF on SIGTERM
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:  # a shutdown held up on a loaded machine
                self.process.kill()
                self.process.wait(timeout=10)

    def client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket), decode_responses=True)


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    directory = Path(tempfile.mkdtemp(prefix="monitor-fault-"))  # short: socket paths
    server = RedisProcess(directory)
    yield server
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.slow
def test_redis_unreachable_at_start_is_retried_until_it_answers(
    own_redis: RedisProcess, feed_server: FeedServer, daemons: Callable[..., Daemon], tmp_path: Path
) -> None:
    serve_sample(feed_server)
    daemon = daemons(config(tmp_path, feed_server), own_redis.url)
    wait_for(lambda: len(daemon.events("redis_unavailable")) >= 2)
    first = daemon.events("redis_unavailable")[0]
    assert first["error"].startswith(f"cannot reach Redis at {own_redis.url}")
    assert first["retry_in"] == 1.0
    assert daemon.proc.poll() is None  # waiting, not gone

    own_redis.start()
    wait_for(lambda: daemon.events("daemon_started"), 60)
    wait_for(lambda: [a["kind"] for a in alerts(own_redis.client())] == ["new"])
    assert daemon.stop() == 0

    waiting = daemons(config(tmp_path, feed_server), "unix:///nonexistent/redis.sock")
    wait_for(lambda: waiting.events("redis_unavailable"))
    assert waiting.stop() == 0  # SIGTERM while waiting: a clean exit


@pytest.mark.slow
def test_redis_restarted_mid_run_loses_nothing(
    own_redis: RedisProcess, feed_server: FeedServer, daemons: Callable[..., Daemon], tmp_path: Path
) -> None:
    own_redis.start()
    client = own_redis.client()
    serve_sample(feed_server, count=2)
    daemon = daemons(config(tmp_path, feed_server, claim_idle=2), own_redis.url)
    wait_for(lambda: len(daemon.events("item_processed")) == 2)

    own_redis.stop()
    guids = serve_sample(feed_server, count=5)  # three new items while Redis is away
    wait_for(lambda: daemon.events("redis_unavailable") and daemon.events("poll_failed"))
    time.sleep(2)
    assert daemon.proc.poll() is None

    own_redis.start()
    client = own_redis.client()
    wait_for(lambda: [a["kind"] for a in alerts(client)] == ["new"], 60)
    wait_for(lambda: len({e["item"] for e in daemon.events("item_processed")}) == 5, 60)
    wait_for(lambda: client.xpending(Keys().items, "processors")["pending"] == 0, 60)
    processed = {e["item"] for e in daemon.events("item_processed")}
    assert len(processed) == len(guids) == 5
    time.sleep(2)  # more polls, nothing new
    assert [a["kind"] for a in alerts(client)] == ["new"]
    assert daemon.stop() == 0


RFC822 = "%a, %d %b %Y %H:%M:%S +0000"
# Reports a minute apart, the newest a few hours old: news (alerts.max_age), not a back catalogue.
NEWS_START = time.time() - 24 * 3600
KILLS = int(os.environ.get("FAULT_KILLS", "5"))  # FAULT_KILLS=20 for the long run


def synthetic_feed(stories: int, per_story: int, seed: int = 7) -> tuple[bytes, list[str]]:
    """`stories` x `per_story` items with their full text in the feed, oldest first: the
    reports of one story share its vocabulary; every fifth report is a lightly edited copy
    of the one before. Returns the feed and ten rules (YAML), each on a word that a few
    stories use."""
    rng = random.Random(seed)
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    vocabulary = sorted({"".join(rng.choices(syllables, k=3)) for _ in range(6000)})
    items = []
    for story in range(stories):
        topic = rng.sample(vocabulary, 40)
        previous: list[str] = []
        for report in range(per_story):
            if previous and report % 5 == 4:
                words = list(previous)
                for at in rng.sample(range(len(words)), 4):
                    words[at] = rng.choice(vocabulary)
            else:
                words = [
                    rng.choice(topic if rng.random() < 0.7 else vocabulary) for _ in range(160)
                ]
            previous = words
            n = len(items)
            items.append(
                {
                    "title": " ".join(words[:6]),
                    "link": f"http://127.0.0.1:1/story/{story}/{report}",
                    "guid": f"item-{n}",
                    "pubDate": time.strftime(RFC822, time.gmtime(NEWS_START + n * 60)),
                    "description": " ".join(words[:20]),
                    "content:encoded": "<![CDATA[<p>" + " ".join(words) + ".</p>]]>",
                }
            )
    body = rss(items[::-1]).replace(
        b'<rss version="2.0">',
        b'<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">',
    )
    rules = [
        f"id: r{k}\nname: rule {k}\nquery: {word}\n" for k, word in enumerate(vocabulary[::600])
    ]
    return body, rules


def run_to_the_end(daemon: Daemon, client: redis.Redis, items: int) -> list[str]:
    """Waits until every item is processed; the ids of the alerts published."""
    queue = ItemsQueue(client, Keys(), maxlen=10**6)
    wait_for(lambda: client.xlen(Keys().items) >= items, 60)
    wait_for(lambda: queue.lag() == (0, 0), 120)
    assert daemon.stop() == 0
    return [a["id"] for a in alerts(client)]


@pytest.mark.slow
def test_sigkill_during_a_1000_item_run_loses_and_doubles_no_alert(
    feed_server: FeedServer, daemons: Callable[..., Daemon], client: redis.Redis, tmp_path: Path
) -> None:
    body, rules = synthetic_feed(stories=200, per_story=5)
    feed_server.static("/feed.xml", body)
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    for n, rule in enumerate(rules):
        (rules_dir / f"r{n}.yaml").write_text(rule)
    # A stable consumer name, as in production: a restarted daemon resumes its own items first.
    cfg = config(tmp_path, feed_server, rules=rules_dir, consumer="monitor-0", claim_idle=60)

    undisturbed = run_to_the_end(daemons(cfg), client, 1000)
    assert len(undisturbed) > 50

    client.flushall()
    rng = random.Random(KILLS)
    processed = 0
    for life in range(KILLS):
        daemon = daemons(cfg)
        wait_for(lambda d=daemon: d.events("daemon_started"))
        if life == 0:  # anywhere: before, during or after the poll
            time.sleep(rng.uniform(0.0, 2.5))
        else:  # while processing
            wait_for(lambda d=daemon: d.events("item_processed"))
            time.sleep(rng.uniform(0.0, 1.5 / KILLS))
        daemon.stop(signal.SIGKILL)
        processed += len(daemon.events("item_processed"))
    assert processed < 1000  # every kill came before the end of the run
    disturbed = run_to_the_end(daemons(cfg), client, 1000)

    assert len(disturbed) == len(set(disturbed))  # nothing doubled
    assert sorted(disturbed) == sorted(undisturbed)  # nothing lost, nothing different
    print(
        f"SIGKILL x{KILLS}: {processed} items processed before the kills, "
        f"{len(disturbed)} alerts, as undisturbed"
    )
