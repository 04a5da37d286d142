"""Story placement is atomic across daemons: three `monitor run` processes on one Redis — or
on a Redis Cluster — give the stories one daemon gives, and each (rule, story) gets exactly
one `new` alert, even when rewrites of one story are processed at the same moment by
different daemons."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from monitor.store.connection import connect, primaries
from monitor.store.keys import Keys

from .feedserver import FeedServer
from .processes import Daemon, wait_for

STORIES = 40
REPORTS = 8  # per story: 320 reports
FILLER = (
    "people officials residents statement week morning local region area service "
    "spokesperson update public council plans office told reporters"
).split()


def pseudo_word(rng: random.Random) -> str:
    return "".join(rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou") for _ in range(4))


def reports() -> list[tuple[str, str, str]]:
    """(guid, title, text): STORIES stories, each with its own names and words, told by
    REPORTS outlets in their own words (each report takes a different half of the story's
    vocabulary, in its own order, with common filler). Reports of one story are adjacent in
    the feed, so several daemons take rewrites of one story at once."""
    rng = random.Random(15)
    out = []
    for s in range(STORIES):
        vocabulary = [pseudo_word(rng) for _ in range(40)]
        place, person = pseudo_word(rng).title(), pseudo_word(rng).title()
        for r in range(REPORTS):
            chosen = rng.sample(vocabulary, 24) + rng.sample(FILLER, 8)
            rng.shuffle(chosen)
            sentences = [" ".join(chosen[i : i + 8]) for i in range(0, len(chosen), 8)]
            text = f"{person} said in {place} that " + ". ".join(sentences) + ". Bulletin."
            title = f"{person} in {place}: {' '.join(rng.sample(vocabulary[:10], 4))}"
            out.append((f"urn:story:{s}:{r}", title, text))
    return out


def feed(server: FeedServer, items: list[tuple[str, str, str]]) -> bytes:
    now = datetime.now(UTC)
    entries = []
    for n, (guid, title, text) in enumerate(items):
        published = format_datetime(now - timedelta(seconds=len(items) - n))
        entries.append(
            f"<item><title>{escape(title)}</title><link>{server.url('/a/' + str(n))}</link>"
            f"<guid>{guid}</guid><pubDate>{published}</pubDate>"
            f"<description>{escape(text[:80])}</description>"
            f"<content:encoded>{escape('<p>' + text + '</p>')}</content:encoded></item>"
        )
    return (
        '<?xml version="1.0"?><rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>wire</title>'
        f"<link>{server.url('/')}</link><description>d</description>{''.join(entries)}"
        "</channel></rss>"
    ).encode()


def run(count: int, server: FeedServer, url: str, tmp_path: Path) -> tuple[dict, list]:
    """Runs `count` daemons on an empty Redis until every report is processed; returns
    item -> story and the alerts."""
    client = connect(url)
    for node in primaries(client):  # one server, or each master of a cluster
        node.flushall()
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    (rules / "bulletin.yaml").write_text("id: bulletin\nname: Bulletin\nquery: bulletin\n")
    (rules / "filler.yaml").write_text("id: council\nname: Council\nquery: council OR public\n")
    cfg = tmp_path / f"monitor{count}.toml"
    cfg.write_text(
        f'rules_dir = "{rules}"\n'
        "[schedule]\ninterval = 1\nmin_interval = 1\njitter = 0\n"
        '[daemon]\nlisten = ""\nbatch = 1\n'
        f'[[feeds]]\nurl = "{server.url("/feed.xml")}"\nname = "wire"\ninterval = 1\n'
    )
    items = reports()
    server.static("/feed.xml", feed(server, []))  # first poll: no back catalogue
    started = [Daemon(cfg, url, tmp_path / f"run{count}-{n}.log") for n in range(count)]
    try:
        wait_for(lambda: any(d.events("feed_polled") for d in started))
        server.static("/feed.xml", feed(server, items))

        def processed() -> list[dict]:
            return [e for d in started for e in d.events("item_processed")]

        wait_for(lambda: len(processed()) >= len(items), timeout=120)
        for daemon in started:
            assert daemon.stop() == 0
        events = processed()
        assert all(sum(1 for e in d.events("item_processed")) for d in started)  # all worked
        alerts = [json.loads(f["alert"]) for _, f in client.xrange(Keys().alerts)]
        return {e["item"]: e["story"] for e in events}, alerts
    finally:
        for daemon in started:
            if daemon.proc.poll() is None:
                daemon.proc.kill()
                daemon.proc.wait()
        client.close()


def partition(story_of: dict[str, str]) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = defaultdict(set)
    for item, story in story_of.items():
        groups[story].add(item)
    return {frozenset(g) for g in groups.values()}


@pytest.mark.slow
def test_three_daemons_give_the_stories_of_one(
    feed_server: FeedServer, redis_url: str, cluster_url: str, tmp_path: Path
) -> None:
    one, one_alerts = run(1, feed_server, redis_url, tmp_path)
    three, three_alerts = run(3, feed_server, redis_url, tmp_path)
    spread, spread_alerts = run(3, feed_server, cluster_url, tmp_path)  # on three masters
    assert len(one) == len(three) == len(spread) == STORIES * REPORTS
    assert len(partition(one)) == STORIES  # the synthetic stories are told apart
    assert partition(three) == partition(one) == partition(spread)
    for story_of, alerts in ((one, one_alerts), (three, three_alerts), (spread, spread_alerts)):
        new = [(a["rule"]["id"], a["story"]["id"]) for a in alerts if a["kind"] == "new"]
        assert len(new) == len(set(new))  # exactly one `new` per (rule, story)
        assert {s for _, s in new} == set(story_of.values())
