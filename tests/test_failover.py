"""A master of a Redis Cluster killed under a running daemon (CLUSTER_FAILOVER=1; about a
minute): three masters and three replicas on loopback; the daemon polls 320 dated reports
and processes them; a third of the way through, the master serving one hot slot gets
SIGKILL. Its replica takes over; the daemon carries on by itself. Every report is placed,
the alerts are those of an undisturbed run on one server (same ids, none twice), and the
time without progress is printed."""

from __future__ import annotations

import itertools
import json
import os
import signal
import tempfile
import time
from datetime import datetime
from pathlib import Path

import pytest
import redis

from monitor.store.connection import connect
from monitor.store.keys import Keys
from monitor.store.localcluster import LocalCluster

from .feedserver import FeedServer
from .processes import Daemon, wait_for
from .test_cluster import REPORTS, STORIES, dated_reports
from .test_daemon import config

pytestmark = pytest.mark.skipif(
    not os.environ.get("CLUSTER_FAILOVER"), reason="a failover run: set CLUSTER_FAILOVER=1"
)
TOTAL = STORIES * REPORTS


def rules(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir(exist_ok=True)
    (folder / "bulletin.yaml").write_text("id: bulletin\nname: Bulletin\nquery: bulletin\n")
    (folder / "council.yaml").write_text("id: council\nname: Council\nquery: council AND public\n")
    return folder


def processed(daemon: Daemon) -> list[dict]:
    return daemon.events("item_processed")


def run(cfg: Path, url: str, log: Path, kill=None) -> tuple[Daemon, float | None]:
    """A daemon over the feed until every report is processed; `kill(client)` once a third
    are, returning when it struck."""
    daemon = Daemon(cfg, url, log)
    struck = None
    try:
        if kill is not None:
            wait_for(lambda: len(processed(daemon)) >= TOTAL // 3, timeout=120)
            struck = kill()
        wait_for(lambda: len({e["item"] for e in processed(daemon)}) >= TOTAL, timeout=180)
    finally:
        daemon.stop(signal.SIGTERM)
    return daemon, struck


def alert_ids(client: redis.Redis) -> list[str]:
    return [fields["id"] for _, fields in client.xrange(Keys().alerts)]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("slot", ["items", "alerts"])
def test_a_master_killed_under_a_running_daemon(
    slot: str, redis_url: str, feed_server: FeedServer, tmp_path: Path
) -> None:
    feed_server.static("/feed.xml", dated_reports(tmp_path / "wire.xml").read_bytes())
    cfg = config(tmp_path, feed_server, rules(tmp_path))
    reference, _ = run(cfg, redis_url, tmp_path / "reference.log")
    expected = alert_ids(redis.Redis.from_url(redis_url, decode_responses=True))

    directory = Path(tempfile.mkdtemp(prefix="monitor-failover-"))
    cluster = LocalCluster(directory, masters=3, replicas=1, node_timeout_ms=1000).start()
    try:
        client = connect(cluster.url)
        stream = Keys().items if slot == "items" else Keys().alerts
        victim = client.get_node_from_key(stream).port

        def kill() -> float:
            cluster.kill(victim)
            return time.time()

        daemon, struck = run(cfg, cluster.url, tmp_path / "cluster.log", kill)
        assert struck is not None
        wait_for(lambda: victim not in cluster.primaries(), timeout=30)
        times = [datetime.fromisoformat(e["timestamp"]).timestamp() for e in processed(daemon)]
        after = [t for t in times if t > struck]
        stalled = (after[0] - struck) if after else float("inf")
        gaps = max(b - a for a, b in itertools.pairwise(times))
        got = alert_ids(client)
        lag = [g for g in client.xinfo_groups(Keys().items) if g["name"] == "processors"]
        figures = {
            "killed": f"master {victim} ({slot} slot)",
            "seconds_without_progress": round(stalled, 2),
            "longest_gap_s": round(gaps, 2),
            "reports": TOTAL,
            "placed": len({e["item"] for e in processed(daemon)}),
            "alerts": len(got),
            "alerts_doubled": len(got) - len(set(got)),
            "alerts_lost": len(set(expected) - set(got)),
            "alerts_not_in_reference": len(set(got) - set(expected)),
            "items_pending": lag[0]["pending"],
            "redis_unavailable_logged": len(daemon.events("redis_unavailable")),
            "items_failed": len(daemon.events("item_failed")),
        }
        print("\nfailover:", json.dumps(figures))
        (Path(tempfile.gettempdir()) / f"monitor-failover-{slot}.json").write_text(
            json.dumps(figures)
        )
        assert figures["placed"] == TOTAL and figures["items_pending"] == 0
        assert figures["alerts_doubled"] == 0 and sorted(got) == sorted(expected)
        assert not client.exists(Keys().items_dead)
        stories = {e["item"]: e["story"] for e in processed(daemon)}
        assert stories == {e["item"]: e["story"] for e in processed(reference)}
    finally:
        cluster.stop()
