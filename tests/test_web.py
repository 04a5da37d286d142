"""The desk (`monitor web`): every page and action over HTTP, against a real Redis filled by
the real pipeline; hostile feed text stays text; write actions need the token and a CSRF
field; the live alerts feed is a real server's server-sent events."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from monitor.config import FeedConfig, Settings, WebSettings
from monitor.ingest.fetch import LocalFetcher
from monitor.model import Item, stable_id
from monitor.pipeline import runtime
from monitor.pipeline.process import article_of
from monitor.pipeline.replay import read_feeds
from monitor.rules import load_rules

from .conftest import ROOT, RULES, SAMPLE_FEEDS
from .feedserver import FeedServer
from .processes import embedded_redis_running, stop_embedded_redis, wait_for

TOKEN = "s3cret-desk-token"


def replayed(redis_url: str, client: redis.Redis, **settings) -> Settings:
    """The seed feed through the real pipeline, as `monitor replay` does."""
    config = Settings(redis_url=redis_url, **settings)
    pipeline = runtime.pipeline(client, config, load_rules(RULES), LocalFetcher(ROOT))
    for item in read_feeds([SAMPLE_FEEDS]):
        pipeline.process(item)
    return config


def story_link(html: str) -> str:
    (link,) = set(re.findall(r'href="(/story/[0-9a-f]+)"', html))
    return link


def test_the_stories_page_shows_the_seed_story_with_its_five_sources(
    redis_url: str, client: redis.Redis, desk
) -> None:
    web = desk(replayed(redis_url, client), client)
    page = web.get("/")
    assert page.status_code == 200
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    html = page.text
    assert "5 reports" in html and html.count('class="story"') == 1
    for source in ("Fakti.bg", "Al Mayadeen English", "The Korea Herald", "Newser", "RT"):
        assert source in html
    assert "dprk-russia-treaty" in html and "Reuters" in html
    # Filters: by rule, source, language, time.
    assert 'class="story"' in web.get("/", params={"rule": "dprk-russia-treaty"}).text
    assert 'class="story"' not in web.get("/", params={"rule": "taiwan-strait-drills"}).text
    assert 'class="story"' in web.get("/", params={"source": "korea herald"}).text
    assert 'class="story"' not in web.get("/", params={"lang": "fr"}).text
    assert 'class="story"' in web.get("/", params={"since": "1h"}).text
    assert web.get("/", params={"since": "soon"}).status_code == 400


def test_the_story_page_lists_reports_alerts_and_marks_the_matched_words(
    redis_url: str, client: redis.Redis, desk
) -> None:
    web = desk(replayed(redis_url, client), client)
    html = web.get(story_link(web.get("/").text)).text
    assert html.count('class="report"') == 5
    assert "<mark>North Korea</mark>" in html or "<mark>Pyongyang</mark>" in html
    assert "DPRK\u2013Russia treaty \u2014 new" in html  # the alert raised for it
    # Newser and RT joined the story within its quiet period: each says so, and until when.
    held = re.findall(
        r'class="held[^"]*"><span class="rule">([^<]+)</span> no alert: ([^<]+)<', html
    )
    assert len(held) == 2
    for rule, why in held:
        assert rule == "dprk-russia-treaty" and why.startswith("update held: quiet until ")
    assert web.get("/story/0000").status_code == 404


def test_near_duplicates_fold_under_their_original(
    redis_url: str, client: redis.Redis, desk
) -> None:
    settings = replayed(redis_url, client)
    pipeline = runtime.pipeline(client, settings, load_rules(RULES), LocalFetcher(ROOT))
    herald = next(i for i in read_feeds([SAMPLE_FEEDS]) if "koreaherald" in i.guid)
    article, _ = article_of(herald, pipeline.fetcher)
    copy = dataclasses.replace(
        herald,
        guid="urn:copy:1",
        url="https://copies.example/herald",
        source="Copy Wire",
        content="".join(f"<p>{p}</p>" for p in article.text.split("\n")),
    )
    assert str(pipeline.process(copy).placement.outcome) == "near_duplicate"
    web = desk(settings, client)
    html = web.get(story_link(web.get("/").text)).text
    assert "1 near-duplicate copy" in html and "Copy Wire" in html
    assert html.count('class="report"') == 5  # the copy is folded, not listed


def test_feed_text_is_never_rendered_as_markup(redis_url: str, client: redis.Redis, desk) -> None:
    settings = Settings(redis_url=redis_url)
    pipeline = runtime.pipeline(client, settings, load_rules(RULES), LocalFetcher(ROOT))
    (item, *_) = read_feeds([SAMPLE_FEEDS])
    hostile = dataclasses.replace(
        item,
        title='<script>alert("x")</script> Pyongyang <img src=x onerror=alert(1)>',
        source="<b>Evil</b>",
        guid="urn:hostile",
    )
    pipeline.process(hostile)
    web = desk(settings, client)
    for page in ("/", story_link(web.get("/").text), "/search?q=pyongyang&days=9999"):
        html = web.get(page).text
        assert "<script>alert" not in html and "<img src=x" not in html and "<b>Evil" not in html
        assert "&lt;script&gt;" in html


def test_alerts_page_filters_by_rule_and_severity(
    redis_url: str, client: redis.Redis, desk
) -> None:
    web = desk(replayed(redis_url, client), client)
    assert "Kim promises Putin" in web.get("/alerts").text
    assert "Kim promises Putin" in web.get("/alerts", params={"severity": "high"}).text
    assert "Kim promises Putin" not in web.get("/alerts", params={"severity": "critical"}).text
    assert (
        "Kim promises Putin" not in web.get("/alerts", params={"rule": "taiwan-strait-drills"}).text
    )


def test_rules_tester_and_search_explain_what_matches(
    redis_url: str, client: redis.Redis, desk
) -> None:
    web = desk(replayed(redis_url, client), client)
    rules = web.get("/rules").text
    assert "DPRK\u2013Russia treaty" in rules and "\u21b3" in rules  # its recent matches
    tested = web.get("/rules", params={"rule": "dprk-russia-treaty", "days": "9999"}).text
    assert "3 matches among 5 retained items" in tested
    assert "alerted already" in tested and "✓" in tested
    typed = web.get("/rules", params={"q": '"full support" AND Ukraine', "days": "9999"}).text
    assert "would raise 1 new alert" in typed and "<mark>" in typed
    found = web.get("/search", params={"q": "title:(Putin AND Kim)", "days": "9999"}).text
    assert "2 matches" in found
    lower = web.get("/search", params={"q": "putin and kim", "days": "9999"}).text
    assert "did you mean AND?" in lower  # the same hint as `rules check` gives a rule file
    bad = web.get("/search", params={"q": "Putin AND (Kim", "days": "1"}).text
    assert "expected &#39;)&#39;" in bad or "expected ')'" in bad


def test_write_actions_need_the_token_and_the_csrf_field(
    redis_url: str, client: redis.Redis, feed_server: FeedServer, desk
) -> None:
    feed_server.static("/feed.xml", (SAMPLE_FEEDS / "feed.xml").read_bytes())
    feed = FeedConfig(url=feed_server.url("/feed.xml"), name="sample")
    read_only = replayed(redis_url, client, feeds=(feed,))
    web = desk(read_only, client)
    page = web.get("/feeds").text
    assert "sample" in page and "<button>pause</button>" not in page
    fid = re.search(r"/feeds/([0-9a-f]+)/", page) or re.search(r'id="([0-9a-f]{16})"', page)
    from monitor.ingest.poll import feed_id

    action = f"/feeds/{feed_id(feed)}/pause"
    assert web.post(action, data={"csrf": "x"}).status_code == 403  # read-only desk

    writable = dataclasses.replace(read_only, web=WebSettings(token=TOKEN))
    web = desk(writable, client)
    assert web.post(action).status_code == 403  # not signed in
    assert web.post("/login", data={"token": "wrong"}).status_code == 403
    assert web.post("/login", data={"token": TOKEN}, follow_redirects=False).status_code == 303
    assert web.post(action, data={"csrf": "forged"}).status_code == 403  # a cross-site form
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', web.get("/feeds").text)
    assert csrf
    assert web.post(action, data={"csrf": csrf[1]}, follow_redirects=False).status_code == 303
    assert "paused" in web.get("/feeds").text
    poll = f"/feeds/{feed_id(feed)}/poll-now"
    assert web.post(poll, data={"csrf": csrf[1]}, follow_redirects=False).status_code == 303
    assert feed_server.hits("/feed.xml") == 1  # polled from the desk, at once
    assert client.xlen("monitor:items") == 5
    (row,) = re.findall(r"<tr class=.*?</tr>", web.get("/feeds").text, re.S)
    cells = re.findall(r"<td>(.*?)</td>", row, re.S)
    assert cells[5] == "5"  # the items column: what the poll took
    del fid


def test_muted_stories_and_sources_raise_no_alert_for_that_rule(
    redis_url: str, client: redis.Redis, desk
) -> None:
    settings = Settings(redis_url=redis_url, web=WebSettings(token=TOKEN))
    web = desk(settings, client)
    web.post("/login", data={"token": TOKEN})
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', web.get("/").text)
    assert csrf
    (first, *_) = read_feeds([SAMPLE_FEEDS])
    story = stable_id("story", first.key)  # the seed story's id, known before it exists
    form = {"csrf": csrf[1], "rule": "dprk-russia-treaty", "scope": "story"}
    assert web.post(f"/story/{story}/mute", data=form, follow_redirects=False).status_code == 303
    replayed(redis_url, client)
    assert client.xlen("monitor:alerts") == 0  # three reports match; the story is muted
    page = web.get(f"/story/{story}").text
    assert "muted for this story" in page and page.count("no alert: muted on the desk") == 3

    client.flushall()  # the session too: a new one, with its own CSRF token
    web.post("/login", data={"token": TOKEN})
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', web.get("/").text)
    assert csrf
    form["csrf"] = csrf[1]
    source = {**form, "scope": "source", "source": "The Korea Herald"}
    assert web.post(f"/story/{story}/mute", data=source, follow_redirects=False).status_code == 303
    replayed(redis_url, client)
    alerts = [json.loads(f["alert"]) for _, f in client.xrange("monitor:alerts")]
    assert [a["item"]["source"] for a in alerts if a["kind"] == "new"] == ["Newser"]
    assert "muted: The Korea Herald" in web.get(f"/story/{story}").text


@contextlib.contextmanager
def web_process(tmp_path: Path, redis_url: str, rules: Path = RULES) -> Iterator[str]:
    """`monitor web` as a process on a free port, on a rules directory; yields its base URL."""
    env = {"MONITOR_REDIS_URL": redis_url, "PATH": "/usr/bin:/bin"}
    if "PYTHONPATH" in os.environ:  # the code under test, where it is not installed
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    log = tmp_path / "web.log"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "monitor",
                "web",
                "--listen",
                "127.0.0.1:0",
                "--rules",
                str(rules),
            ],
            env=env,
            stderr=stderr,
            stdout=subprocess.DEVNULL,
            cwd=tmp_path,
        )
    try:
        wait_for(lambda: "web_listening" in log.read_text())
        address = json.loads(
            next(line for line in log.read_text().splitlines() if "web_listening" in line)
        )["address"]
        yield f"http://{address}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def web_server(tmp_path: Path, redis_url: str) -> Iterator[str]:
    """`monitor web` as a process on a free port; yields its base URL."""
    with web_process(tmp_path, redis_url) as url:
        yield url


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_desk_and_its_embedded_redis(tmp_path: Path, sig: int) -> None:
    """systemd, Docker and `kill` send SIGTERM: like Ctrl-C, the desk exits 0 and stops the
    embedded redis-server it started (it was killed, and the server ran on)."""
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    log = tmp_path / "web.log"
    argv = ["web", "--listen", "127.0.0.1:0", "--rules", str(RULES), "--state-dir", str(state)]
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", *argv],
            env=env,
            stderr=stderr,
            stdout=subprocess.DEVNULL,
            cwd=tmp_path,
        )
    pid = 0
    try:
        wait_for(lambda: "web_listening" in log.read_text())
        pid = int((state / "redis.pid").read_text())
        address = json.loads(
            next(line for line in log.read_text().splitlines() if "web_listening" in line)
        )["address"]
        with httpx.stream("GET", f"http://{address}/alerts/stream", timeout=20) as live:
            assert next(live.iter_lines()) == ": connected"  # an open live view
            proc.send_signal(sig)
            assert proc.wait(timeout=30) == 0, log.read_text()
        assert not embedded_redis_running(state, pid)
        assert "Traceback" not in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
        if pid:
            stop_embedded_redis(pid)


def test_live_alerts_arrive_as_server_sent_events(
    web_server: str, redis_url: str, client: redis.Redis
) -> None:
    received: list[dict] = []
    with httpx.stream("GET", f"{web_server}/alerts/stream", timeout=20) as events:
        lines = events.iter_lines()
        assert next(lines) == ": connected"
        replayed(redis_url, client)  # the seed replay publishes the treaty alert meanwhile
        deadline = time.monotonic() + 15
        for line in lines:
            if line.startswith("data: "):
                received.append(json.loads(line[6:]))
                break
            assert time.monotonic() < deadline
    assert received[0]["rule"] == "DPRK\u2013Russia treaty" and received[0]["kind"] == "new"


def test_a_taken_port_is_one_clear_line(tmp_path: Path, redis_url: str, web_server: str) -> None:
    taken = web_server.rsplit("//", 1)[1]
    out = subprocess.run(
        [sys.executable, "-m", "monitor", "web", "--listen", taken, "--rules", str(RULES)],
        env={"MONITOR_REDIS_URL": redis_url, "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert f"cannot listen on {taken}" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
def test_monitor_run_serves_the_desk_beside_health_and_metrics(
    feed_server: FeedServer, daemons, client: redis.Redis, tmp_path: Path
) -> None:
    from .test_daemon import config, serve_sample

    serve_sample(feed_server, count=5)
    cfg = config(tmp_path, feed_server, listen="127.0.0.1:0")
    cfg.write_text(cfg.read_text() + "[web]\nin_daemon = true\n")
    daemon = daemons(cfg)
    wait_for(lambda: len(daemon.events("item_processed")) == 5, timeout=60)
    (listening,) = daemon.events("http_listening")
    assert listening["desk"] is True
    base = f"http://{listening['address']}"
    assert httpx.get(f"{base}/healthz").json()["redis"] is True
    assert "monitor_items_enqueued_total 5.0" in httpx.get(f"{base}/metrics").text
    stories = httpx.get(f"{base}/").text
    assert "5 reports" in stories and "The Korea Herald" in stories
    assert daemon.stop() == 0


def test_crafted_requests_get_answers_not_errors(redis_url: str, client: redis.Redis, desk) -> None:
    settings = dataclasses.replace(replayed(redis_url, client), web=WebSettings(token=TOKEN))
    web = desk(settings, client)
    for path in (
        "/search?q=kim&days=nan",
        "/rules?q=kim&days=inf",
        "/?before=nan",
        "/?before=-inf",
        "/alerts?severity=nope",
    ):
        assert web.get(path).status_code == 200, path
    assert web.post("/login", data={"token": "é"}).status_code == 403
    raw = {"cookie": "desk_session=ünïcode".encode()}  # as a hostile client sends it
    assert web.get("/", headers=raw).status_code == 200
    assert web.get("/alerts/stream?after=not-an-id").status_code == 400


def test_a_javascript_link_is_never_a_link(redis_url: str, client: redis.Redis, desk) -> None:
    settings = Settings(redis_url=redis_url)
    pipeline = runtime.pipeline(client, settings, load_rules(RULES), LocalFetcher(ROOT))
    (item, *_) = read_feeds([SAMPLE_FEEDS])
    # Past the feed parser's check (it drops such links), the desk still refuses them.
    hostile = dataclasses.replace(item, guid="urn:js", url="javascript:alert(1)")
    pipeline.process(hostile)
    web = desk(settings, client)
    html = web.get(story_link(web.get("/").text)).text
    assert 'href="javascript:' not in html and 'href="#"' in html
    policy = web.get("/").headers["content-security-policy"]
    assert "'unsafe-inline'" not in policy and "script-src 'self'" in policy


def test_a_reconnecting_live_view_resumes_after_its_last_event(
    web_server: str, redis_url: str, client: redis.Redis
) -> None:
    replayed(redis_url, client)
    (first, *_) = client.xrange("monitor:alerts")
    client.xadd("monitor:alerts", {"alert": first[1]["alert"]})  # a second alert, later
    with httpx.stream(
        "GET", f"{web_server}/alerts/stream", timeout=20, headers={"Last-Event-ID": first[0]}
    ) as events:
        lines = events.iter_lines()
        assert next(lines) == ": connected"
        got = next(line[4:] for line in lines if line.startswith("id: "))
    assert got != first[0]  # the one after, not the one it had


def test_the_desk_follows_its_rules_directory(tmp_path: Path, redis_url: str) -> None:
    """A rule added while `monitor web` runs is listed within seconds, as the daemon runs it;
    a broken change keeps the rules in force, and the rules page says why."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    with web_process(tmp_path, redis_url, rules) as base:
        assert "kcna-statement" not in httpx.get(f"{base}/rules").text
        (rules / "kcna.yaml").write_text(
            "id: kcna-statement\nname: KCNA statement\nseverity: low\nquery: KCNA\n"
        )
        wait_for(lambda: "kcna-statement" in httpx.get(f"{base}/rules").text, timeout=15)
        assert "kcna-statement" in httpx.get(f"{base}/").text  # the stories' rule filter too

        (rules / "broken.yaml").write_text("id: broken\nname: Broken\nquery: 'a AND'\n")
        wait_for(lambda: "does not load" in httpx.get(f"{base}/rules").text, timeout=15)
        page = httpx.get(f"{base}/rules").text
        assert "broken.yaml" in page and "keeps the 4 rules it had" in page
        assert "kcna-statement" in page
        (rules / "broken.yaml").unlink()
        wait_for(lambda: "does not load" not in httpx.get(f"{base}/rules").text, timeout=15)


def test_the_desk_counts_in_words_and_says_when_a_filter_matches_nothing(
    redis_url: str, client: redis.Redis, desk
) -> None:
    settings = replayed(redis_url, client)
    pipeline = runtime.pipeline(client, settings, load_rules(RULES), LocalFetcher(ROOT))
    alone = Item(  # a story of one report, from one source, that alerts
        guid="urn:test:alone",
        url="",
        title="PLA drills around Taiwan",
        source="Test Wire",
        feed="test",
        summary="China's PLA began large-scale drills around Taiwan on Monday, Taipei said.",
    )
    assert pipeline.process(alone).alerts
    web = desk(settings, client)
    stories = web.get("/").text
    assert "2 stories with retained reports" in stories
    assert "1 report</span>" in stories and "5 reports</span>" in stories
    one = stable_id("story", alone.key)
    assert "1 report from 1 source" in web.get(f"/story/{one}").text
    assert "5 reports from 5 sources" in web.get(story_link(stories.replace(one, ""))).text
    alerts = web.get("/alerts").text
    assert f'href="/story/{one}">1 report</a>' in alerts

    nothing = web.get("/", params={"source": "nobody"}).text
    assert "No story matches these filters (of 2 stories retained)" in nothing
    assert "No stories yet" not in nothing
    unknown = web.get("/", params={"rule": "x"}).text
    assert "no rule 'x'" in unknown and "No story matches" in unknown
    assert 'name="days" size="3" value="7"' in web.get("/rules", params={"days": "7"}).text
    assert 'value="0.5"' in web.get("/search", params={"q": "treaty", "days": "0.5"}).text
    # Every count in the templates takes its noun through the one filter.
    for template in (ROOT / "monitor" / "web" / "templates").glob("*.html"):
        text = template.read_text()
        assert not re.search(r"\}\}\s*(reports|sources|stories|matches|items)\b", text), template
