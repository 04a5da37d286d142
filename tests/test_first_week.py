"""What a new user tripped on in the first week (issue 17), each fixed and shown here:
options where people type them, state beside the configuration, two daemons on one host,
feeds that can be managed, rules, dead letters, output that speaks, redis-cli."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest
import redis
from structlog.testing import capture_logs

from monitor.cli import _parser
from monitor.config import load
from monitor.store.keys import Keys

from .conftest import FIXTURES, RULES, SAMPLE_FEEDS
from .feedserver import FeedServer, Reply
from .processes import embedded_redis_running, stop_embedded_redis, wait_for
from .test_cli import json_lines, monitor
from .test_daemon import alerts, config, serve_sample

# --- 1. options before and after the command ---------------------------------------------


def test_global_options_are_accepted_before_and_after_the_command() -> None:
    parser = _parser()
    for argv in (
        ["--config", "m.toml", "--redis", "redis://h/0", "--log-level", "debug", "run"],
        ["run", "--config", "m.toml", "--redis", "redis://h/0", "--log-level", "debug"],
        ["--config", "m.toml", "run", "--redis", "redis://h/0", "--log-level", "debug"],
        ["--log-level", "debug", "feeds", "--config", "m.toml", "list", "--redis", "redis://h/0"],
    ):
        args = parser.parse_args(argv)
        assert (args.config, args.redis, args.log_level) == (
            Path("m.toml"),
            "redis://h/0",
            "debug",
        ), argv
    args = parser.parse_args(["status"])
    assert (args.config, args.redis, args.log_level, args.state_dir) == (None, None, None, None)


@pytest.mark.slow
def test_status_with_options_on_either_side(tmp_path: Path, redis_url: str) -> None:
    cfg = tmp_path / "monitor.toml"
    cfg.write_text('prefix = "wk:"\n')
    before = monitor("--config", str(cfg), "--redis", redis_url, "status", cwd=tmp_path)
    after = monitor("status", "--config", str(cfg), "--redis", redis_url, cwd=tmp_path)
    assert before.returncode == 0 and after.returncode == 0, before.stderr + after.stderr
    assert before.stdout == after.stdout
    assert "daemons running: 0" in after.stdout


# --- 2. state beside the configuration -----------------------------------------------------


def test_state_dir_follows_the_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "conf" / "monitor.toml"
    cfg.parent.mkdir()
    cfg.write_text("")
    assert load(cfg, env={}).state_dir == cfg.parent / ".monitor"
    cfg.write_text('state_dir = "state"\n')
    assert load(cfg, env={}).state_dir == cfg.parent / "state"
    cfg.write_text('data_dir = "old"\n')  # the setting's old name still works
    assert load(cfg, env={}).state_dir == cfg.parent / "old"
    assert load(cfg, env={"MONITOR_STATE_DIR": "/srv/x"}).state_dir == Path("/srv/x")
    assert load(None, env={}).state_dir == Path(".monitor")
    assert load(cfg, env={}, state_dir=Path("flag")).state_dir == Path("flag")
    cfg.write_text('rules_dir = "rules"\n')  # a path in the file: relative to the file
    assert load(cfg, env={}).rules_dir == cfg.parent / "rules"
    assert load(cfg, env={"MONITOR_RULES_DIR": "r"}).rules_dir == Path("r")


@pytest.mark.slow
def test_the_same_config_from_another_directory_sees_the_same_data(tmp_path: Path) -> None:
    cfg = tmp_path / "conf" / "monitor.toml"
    cfg.parent.mkdir()
    cfg.write_text(f'rules_dir = "{RULES}"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    replay = monitor("--config", str(cfg), "replay", str(SAMPLE_FEEDS), cwd=tmp_path)
    assert replay.returncode == 0, replay.stderr
    assert (cfg.parent / ".monitor" / "appendonly.aof").exists()
    assert f"state: {cfg.parent / '.monitor'}" in replay.stdout
    assert not (tmp_path / ".monitor").exists()
    consumed = monitor("consume", "--from-start", "--json", "--config", str(cfg), cwd=elsewhere)
    assert [a["kind"] for a in json_lines(consumed.stdout)] == ["new"]
    assert not (elsewhere / ".monitor").exists()
    status = monitor("status", "--config", str(cfg), cwd=elsewhere)
    assert f"redis: embedded, state in {cfg.parent / '.monitor'}" in status.stdout


# --- 3. two daemons on one host -------------------------------------------------------------


def test_a_taken_listen_address_is_one_line_naming_the_setting(
    feed_server: FeedServer, redis_url: str, tmp_path: Path
) -> None:
    serve_sample(feed_server, count=1)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = config(tmp_path, feed_server, listen=f"127.0.0.1:{port}")
        run = monitor("--config", str(cfg), "run", cwd=tmp_path, redis_url=redis_url)
    assert run.returncode == 2
    errors = [line for line in run.stderr.splitlines() if not line.startswith("{")]
    assert errors == [
        f"monitor: error: daemon.listen 127.0.0.1:{port}: Address already in use (another "
        "daemon on this host?); set daemon.listen (or MONITOR_DAEMON_LISTEN) to another "
        'HOST:PORT, HOST:0 for any free port, or "" for none'
    ]
    assert "Traceback" not in run.stderr


@pytest.mark.slow
def test_port_0_and_the_real_feed_count_are_logged(
    feed_server: FeedServer, daemons, redis_url: str, client: redis.Redis, tmp_path: Path
) -> None:
    serve_sample(feed_server, count=1)
    opml = tmp_path / "more.opml"
    opml.write_text(
        '<opml version="2.0"><body>'
        + "".join(f'<outline type="rss" xmlUrl="{feed_server.url(f"/x{n}.xml")}"/>' for n in (1, 2))
        + "</body></opml>"
    )
    cfg = config(tmp_path, feed_server, listen="127.0.0.1:0")
    imported = monitor(
        "--config", str(cfg), "feeds", "import", str(opml), cwd=tmp_path, redis_url=redis_url
    )
    assert "2 feeds added" in imported.stdout, imported.stderr
    daemon = daemons(cfg)
    wait_for(lambda: bool(daemon.events("daemon_started")))
    (started,) = daemon.events("daemon_started")
    (listening,) = daemon.events("http_listening")
    assert started["feeds"] == 3  # one configured, two imported
    host, port = listening["address"].rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0 and started["listen"] == listening["address"]
    assert started["redis"] == redis_url  # where the data is (embedded: its state directory)
    wait_for(lambda: bool(client.keys(Keys().daemon("*"))))
    status = monitor("--config", str(cfg), "status", cwd=tmp_path, redis_url=redis_url)
    assert f"listening on {listening['address']}, 3 feeds" in status.stdout
    daemon.stop()


# --- 4. feeds you can manage ---------------------------------------------------------------


@pytest.mark.slow
def test_pause_resume_remove_and_poll_now_with_a_running_daemon(
    feed_server: FeedServer, daemons, redis_url: str, client: redis.Redis, tmp_path: Path
) -> None:
    serve_sample(feed_server, count=2)  # no rule matches these two
    cfg = config(tmp_path, feed_server, listen="", rules_check=0.5)
    text = cfg.read_text().replace("interval = 1\n", "interval = 600\n")
    cfg.write_text(text.replace("min_interval = 1", "min_interval = 1\nmax_interval = 3600"))

    def cli(*args: str):
        run = monitor("--config", str(cfg), *args, cwd=tmp_path, redis_url=redis_url)
        assert run.returncode == 0, run.stderr
        return run.stdout

    daemon = daemons(cfg)
    wait_for(lambda: len(daemon.events("item_processed")) == 2)
    polls = len(daemon.events("feed_polled"))
    # The feed was just polled and its lease is held for half its 600 s interval: a new
    # report now would wait ~10 minutes. poll-now takes it at once.
    serve_sample(feed_server, count=3)
    assert client.exists(Keys().lease(daemon.events("feed_polled")[0]["feed"]))
    out = cli("feeds", "poll-now", "sample")
    assert "HTTP 200, 3 entries, 1 new (a running daemon processes them)" in out
    wait_for(lambda: len(alerts(client)) == 1, timeout=15)  # the Korea Herald report
    assert len(daemon.events("feed_polled")) == polls  # polled by the command, not the daemon

    assert "paused sample" in cli("feeds", "pause", feed_server.url("/feed.xml"))
    wait_for(lambda: bool(daemon.events("feed_paused")))
    listed = cli("feeds", "list")
    assert "paused" in listed
    assert "0 paused" not in cli("status") and "1 paused" in cli("status")
    assert "resumed sample" in cli("feeds", "resume", "SAMPLE")
    wait_for(lambda: bool(daemon.events("feed_resumed")))

    opml = tmp_path / "one.opml"
    opml.write_text(
        f'<opml version="2.0"><body><outline type="rss" text="extra" '
        f'xmlUrl="{feed_server.url("/extra.xml")}"/></body></opml>'
    )
    cli("feeds", "import", str(opml))
    wait_for(lambda: bool(daemon.events("feed_added")))
    assert "removed extra" in cli("feeds", "remove", "extra")
    wait_for(lambda: bool(daemon.events("feed_removed")))
    assert "extra" not in cli("feeds", "list")
    refused = monitor(
        "--config", str(cfg), "feeds", "remove", "sample", cwd=tmp_path, redis_url=redis_url
    )
    assert refused.returncode == 2 and "remove it there" in refused.stderr
    unknown = monitor(
        "--config", str(cfg), "feeds", "pause", "nope", cwd=tmp_path, redis_url=redis_url
    )
    assert unknown.returncode == 2 and "no feed 'nope'" in unknown.stderr
    assert daemon.stop() == 0


def test_a_failed_poll_now_is_one_line_saying_why_and_exits_1(
    feed_server: FeedServer, redis_url: str, tmp_path: Path
) -> None:
    serve_sample(feed_server, count=1)
    page = b"<html><body><p>Not a feed.</p></body></html>"
    feed_server.routes["/page.html"] = lambda h: Reply(200, page, {"Content-Type": "text/html"})
    with socket.socket() as taken:  # a port nothing listens on: the connection is refused
        taken.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{taken.getsockname()[1]}/feed.xml"
    cfg = tmp_path / "monitor.toml"
    feeds = {
        "good": feed_server.url("/feed.xml"),
        "gone": feed_server.url("/gone.xml"),
        "page": feed_server.url("/page.html"),
        "refused": refused,
    }
    cfg.write_text("".join(f'[[feeds]]\nname = "{n}"\nurl = "{u}"\n' for n, u in feeds.items()))
    for name, why in (
        ("gone", "failed, HTTP 404; next poll"),
        ("page", "failed, not a feed (no RSS, Atom or RDF root element); next poll"),
        ("refused", "failed, cannot connect to 127.0.0.1:"),  # ...: connection refused
    ):
        run = monitor(
            "--config", str(cfg), "feeds", "poll-now", name, cwd=tmp_path, redis_url=redis_url
        )
        said = [line for line in run.stderr.splitlines() if not line.startswith("{")]
        assert run.returncode == 1 and run.stdout == "", (name, run.stdout, run.stderr)
        assert len(said) == 1 and said[0].startswith(f"polled {name} (") and why in said[0], said
        # At a terminal, the same: one line, not also the poller's warning.
        args = ("--config", str(cfg), "feeds", "poll-now", name)
        code, out = _on_a_terminal(*args, cwd=tmp_path, redis_url=redis_url, stderr_too=True)
        lines = out.strip().splitlines()
        assert code == 1 and len(lines) == 1 and why in lines[0], out
    good = monitor(
        "--config", str(cfg), "feeds", "poll-now", "good", cwd=tmp_path, redis_url=redis_url
    )
    assert good.returncode == 0 and "HTTP 200, 1 entries, 1 new" in good.stdout, good.stderr
    both = monitor(
        "--config", str(cfg), "feeds", "poll-now", "good", "gone", cwd=tmp_path, redis_url=redis_url
    )
    assert both.returncode == 1 and "HTTP 304, 0 entries, 0 new" in both.stdout


@pytest.mark.slow
def test_status_lists_only_failing_feeds(
    feed_server: FeedServer, redis_url: str, tmp_path: Path
) -> None:
    serve_sample(feed_server, count=1)
    cfg = config(tmp_path, feed_server)
    opml = tmp_path / "many.opml"
    opml.write_text(
        '<opml version="2.0"><body>'
        + "".join(
            f'<outline type="rss" xmlUrl="{feed_server.url(f"/f{n}.xml")}"/>' for n in range(8)
        )
        + "</body></opml>"
    )
    broken = (FIXTURES / "feeds" / "not_a_feed.xml").read_bytes()  # a long error
    feed_server.static("/f3.xml", broken, **{"Content-Type": "application/rss+xml"})
    for args, code in (
        (("feeds", "import", str(opml)), 0),
        (("feeds", "poll-now", "sample", feed_server.url("/f3.xml")), 1),  # not a feed: failed
    ):
        run = monitor("--config", str(cfg), *args, cwd=tmp_path, redis_url=redis_url)
        assert run.returncode == code, run.stderr
    status = monitor("--config", str(cfg), "status", cwd=tmp_path, redis_url=redis_url).stdout
    assert "feeds: 9 (1 configured, 8 imported), 0 paused, 1 failing" in status
    table = status.split("failing", 1)[1]
    assert "/f3.xml" in table and "/feed.xml" not in table and "/f4.xml" not in table
    listed = monitor("--config", str(cfg), "feeds", "list", cwd=tmp_path, redis_url=redis_url)
    assert len(listed.stdout.splitlines()) == 1 + 9 + 1  # and the failing feed's error
    rows = json_lines(
        monitor(
            "--config", str(cfg), "feeds", "list", "--json", cwd=tmp_path, redis_url=redis_url
        ).stdout
    )
    (error,) = [r["last_error"] for r in rows if r["last_error"]]
    assert len(error) > 40 and "not a readable feed" in error
    assert f"\n  last error: {error}\n" in listed.stdout  # whole, not cut at 30 characters
    assert f"\n  last error: {error}\n" in status


# --- 5. rules ------------------------------------------------------------------------------


def test_rules_check_reports_every_broken_file_and_rule_in_one_run(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "aliases.yaml").write_text("dprk: [DPRK, Pyongyang]\n")
    (rules / "a.yaml").write_text("id: a\nname: A\nquery: 'putin AND (treaty'\n")
    (rules / "b.yaml").write_text("id: [\n")
    (rules / "c.yaml").write_text(
        "- id: good\n  name: G\n  query: '@dprk AND huawei and ban'\n"
        "- id: Bad\n  name: B\n  query: x\n"
        "- id: also-bad\n  name: B\n  query: '@nope'\n"
    )
    (rules / "d.yaml").write_text("id: fine\nname: F\nquery: 'treaty OR pact'\n")
    run = monitor("rules", "check", str(rules), cwd=tmp_path)
    assert run.returncode == 1
    lines = run.stderr.splitlines()
    assert lines[:4] == [
        f"{rules}/a.yaml:3:19: query: expected ')' to close the '('",
        f"{rules}/b.yaml:2:1: invalid YAML: expected the node content, but found '<stream end>'",
        f"{rules}/c.yaml:4:7: bad rule id 'Bad': use a-z, 0-9, '-' and '_'",
        f"{rules}/c.yaml:9:11: query: unknown alias @nope (known: dprk)",
    ]
    assert lines[4:] == [
        f"{rules}/c.yaml:3:28: query: 'and' is searched as a word: did you mean AND? (warning)"
    ]
    assert "4 errors in 3 files; 2 rules, 1 alias valid, 1 warning" in run.stdout


def test_lower_case_operators_between_terms_are_lint_warnings() -> None:
    from monitor.rules.query import lint

    assert [m for _, m in lint("huawei and ban")] == [
        "'and' is searched as a word: did you mean AND?"
    ]
    assert [o for o, _ in lint("a or b not c near d")] == [2, 7, 13]
    assert lint("huawei AND ban") == []
    assert lint('"rock and roll" OR and') == []  # in a phrase, or at the end: meant as words
    assert lint("(and) OR x") == []


def test_the_readme_explain_example_matches(tmp_path: Path) -> None:
    readme = (RULES.parent / "README.md").read_text()
    line = next(
        x for x in readme.splitlines() if x.startswith("monitor rules explain") and "--text" in x
    )
    text = line.split('--text "', 1)[1].split('"', 1)[0]
    run = monitor(
        "rules",
        "explain",
        "dprk-russia-treaty",
        "--rules",
        str(RULES),
        "--text",
        text,
        cwd=tmp_path,
    )
    assert run.returncode == 0 and "MATCH, score" in run.stdout, run.stdout


# --- 6. dead letters you can act on ---------------------------------------------------------


def _publish(client: redis.Redis, count: int) -> list[str]:
    from monitor.delivery.queue import AlertQueue
    from monitor.store.keys import Keys

    queue = AlertQueue(client, Keys(), maxlen=10_000, id_ttl=3600)
    ids = [f"alert{n:03d}" for n in range(count)]
    for alert_id in ids:
        queue.publish({"id": alert_id, "kind": "new", "rule": {"id": "r"}, "item": {"title": "t"}})
    return ids


def test_a_gone_webhook_pauses_instead_of_dead_lettering_the_backlog(
    client: redis.Redis, feed_server: FeedServer, redis_url: str, tmp_path: Path
) -> None:
    from monitor.delivery.consumer import dead_letters

    _publish(client, 53)
    feed_server.routes["/typo"] = lambda h: Reply(410)
    started = time.monotonic()
    run = monitor(
        "forward", "--webhook", feed_server.url("/typo"), cwd=tmp_path, redis_url=redis_url
    )
    assert run.returncode == 2
    assert "5 deliveries in a row failed (last: HTTP 410); stopped" in run.stderr
    assert list(dead_letters(client)) == []
    assert len(feed_server.bodies) == 5
    assert time.monotonic() - started < 30
    # Later, the URL fixed: every alert arrives.
    feed_server.routes["/fixed"] = lambda h: Reply(204)
    run = monitor(
        "forward",
        "--webhook",
        feed_server.url("/fixed"),
        "--claim-idle",
        "0",
        cwd=tmp_path,
        redis_url=redis_url,
    )
    assert run.returncode == 0 and "53 alerts delivered" in run.stderr, run.stderr
    ids = {json.loads(b)["id"] for b in feed_server.bodies[5:]}
    assert len(ids) == 53


def test_a_failing_endpoint_is_paused_with_backoff_then_probed(
    client: redis.Redis, feed_server: FeedServer
) -> None:
    from monitor.delivery.consumer import AlertConsumer
    from monitor.delivery.forward import Forwarder

    _publish(client, 6)
    answers = iter([Reply(503)] * 2 * 3 + [Reply(204)] * 100)  # 3 alerts x 2 attempts fail
    feed_server.routes["/flaky"] = lambda h: next(answers)
    consumer = AlertConsumer(client, group="webhook", consumer="f", claim_idle=0.05)
    stop = threading.Event()
    forwarder = Forwarder(
        consumer,
        feed_server.url("/flaky"),
        attempts=2,
        backoff=0.01,
        trip_after=2,
        pause=0.2,
        stop=stop,
    )
    with capture_logs() as logs:
        delivered = forwarder.run(follow=True, count=6)
    forwarder.close()
    paused = [e for e in logs if e["event"] == "endpoint_paused"]
    assert [e["seconds"] for e in paused] == [0.2, 0.4]  # tripped, then the probe failed too
    assert delivered == 6 and consumer.lag() == (0, 0)


@pytest.mark.slow
def test_dead_letters_are_listed_and_requeued_for_their_group(
    client: redis.Redis, feed_server: FeedServer, redis_url: str, tmp_path: Path
) -> None:
    from monitor.delivery.consumer import AlertConsumer, dead_letters

    ids = _publish(client, 3)
    for group in ("bots", "tickets"):
        consumer = AlertConsumer(client, group=group, consumer="c")
        for delivery in consumer.drain():
            if delivery.value["id"] != ids[2] or group == "bots":
                consumer.dead_letter(delivery, "handler failed")
            else:
                consumer.ack(delivery)
    letters = list(dead_letters(client))
    assert len(letters) == 5

    listed = monitor("consume", "--dead", cwd=tmp_path, redis_url=redis_url)
    assert listed.stdout.count("handler failed") == 5
    bad = monitor("consume", "--requeue", "nope", cwd=tmp_path, redis_url=redis_url)
    assert bad.returncode == 2 and "no dead letter nope" in bad.stderr
    assert len(list(dead_letters(client))) == 5  # nothing moved
    # The ids `--dead` lists: an alert's entry (dead-lettered by both groups here) or its id.
    one = monitor(
        "consume",
        "--requeue",
        letters[0]["entry"],
        "--group",
        "bots",
        cwd=tmp_path,
        redis_url=redis_url,
    )
    assert "1 dead letter requeued; read them with: monitor consume --group bots" in one.stdout
    rest = monitor(
        "consume", "--requeue", "--all", "--group", "bots", cwd=tmp_path, redis_url=redis_url
    )
    assert "2 dead letters requeued" in rest.stdout, rest.stderr
    assert {x["group"] for x in dead_letters(client)} == {"tickets"}

    again = monitor("consume", "--group", "bots", "--json", cwd=tmp_path, redis_url=redis_url)
    assert sorted(a["id"] for a in json_lines(again.stdout)) == ids  # back, for bots only
    other = monitor("consume", "--group", "tickets", "--json", cwd=tmp_path, redis_url=redis_url)
    assert other.stdout == ""
    assert monitor("consume", "--group", "bots", cwd=tmp_path, redis_url=redis_url).stdout == ""
    by_alert = monitor("consume", "--requeue", ids[0], cwd=tmp_path, redis_url=redis_url)
    assert "1 dead letter requeued; read them with: monitor consume --group tickets" in (
        by_alert.stdout
    )
    assert client.xpending(Keys().alerts, "bots")["pending"] == 0


# --- 7. output that speaks --------------------------------------------------------------------


def _on_a_terminal(
    *args: str, cwd: Path, redis_url: str, stderr_too: bool = False, columns: int = 0
) -> tuple[int, str]:
    """Run `monitor ARGS` with its stdout (and with `stderr_too` its stderr, where the log
    goes) on a pseudo-terminal (`columns` wide, if given)."""
    primary, secondary = pty.openpty()
    if columns:
        fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env["MONITOR_REDIS_URL"] = redis_url
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", *args],
        cwd=cwd,
        env=env,
        stdout=secondary,
        stderr=secondary if stderr_too else subprocess.DEVNULL,
    )
    os.close(secondary)
    output = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # EIO: the other side closed
            break
        if not chunk:
            break
        output += chunk
    os.close(primary)
    return proc.wait(timeout=60), output.decode()


@pytest.mark.slow
def test_an_empty_consume_says_so_on_a_terminal_and_not_with_json(
    redis_url: str, tmp_path: Path
) -> None:
    for args, said in (
        (("consume",), "no alerts (only new ones are shown: --from-start for all)"),
        (("consume", "--from-start"), "no alerts"),
        (("consume", "--group", "g"), "no alerts for group g"),
        (("consume", "--dead"), "no alerts in the dead letters"),
    ):
        code, out = _on_a_terminal(*args, cwd=tmp_path, redis_url=redis_url)
        assert code == 0 and out.strip() == said, (args, out)
        code, out = _on_a_terminal(*args, "--json", cwd=tmp_path, redis_url=redis_url)
        assert code == 0 and out == "", (args, out)
        piped = monitor(*args, cwd=tmp_path, redis_url=redis_url)
        assert piped.returncode == 0 and piped.stdout == ""


def _feed(path: Path, count: int, link: str = "") -> Path:
    items = "".join(
        f"<item><title>Report {n}: Pyongyang and Moscow sign pact</title>"
        f"<link>{link or f'https://example.org/{n}'}</link><guid>g{n}</guid>"
        f"<pubDate>Wed, 19 Jun 2024 05:11:00 +0300</pubDate>"
        f"<description>Putin and Kim Jong Un signed a pact in Pyongyang, report {n}.</description>"
        "</item>"
        for n in range(count)
    )
    path.write_text(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'
    )
    return path


@pytest.mark.slow
def test_an_alert_from_the_feed_summary_says_so(redis_url: str, tmp_path: Path) -> None:
    import jsonschema

    feed = _feed(tmp_path / "feed.xml", 1, link="pages/missing.html")
    run = monitor(
        "replay", "--rules", str(RULES), str(feed), "--json", cwd=tmp_path, redis_url=redis_url
    )
    (item,) = json_lines(run.stdout)[:-1]
    assert item["text_from"] == "summary" and item["alerts"]
    (alert,) = json_lines(
        monitor("consume", "--from-start", "--json", cwd=tmp_path, redis_url=redis_url).stdout
    )
    assert alert["item"]["text_from"] == "summary"
    schema = json.loads((RULES.parent / "docs" / "alert.schema.json").read_text())
    jsonschema.validate(alert, schema)
    human = monitor("consume", "--from-start", cwd=tmp_path, redis_url=redis_url).stdout
    assert "(matched on the feed's summary: the page could not be fetched)" in human

    seed = monitor(
        "replay",
        "--fresh",
        "--rules",
        str(RULES),
        str(SAMPLE_FEEDS),
        "--json",
        cwd=tmp_path,
        redis_url=redis_url,
    )
    assert {i["text_from"] for i in json_lines(seed.stdout)[:-1]} == {"page"}
    (alert,) = json_lines(
        monitor("consume", "--from-start", "--json", cwd=tmp_path, redis_url=redis_url).stdout
    )
    assert alert["item"]["text_from"] == "page"
    human = monitor("consume", "--from-start", cwd=tmp_path, redis_url=redis_url).stdout
    assert "feed's summary" not in human


@pytest.mark.slow
def test_ctrl_c_during_a_replay_prints_the_partial_summary_and_exits_130(
    redis_url: str, client: redis.Redis, tmp_path: Path
) -> None:
    feed = _feed(tmp_path / "many.xml", 3000)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env["MONITOR_REDIS_URL"] = redis_url
    for human in (False, True):
        client.flushall()
        argv = [sys.executable, "-m", "monitor", "replay", "--rules", str(RULES), str(feed)]
        proc = subprocess.Popen(
            [*argv, *([] if human else ["--json"])],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        if human:  # nothing is printed before the end: wait until some items are done
            wait_for(lambda: client.exists(Keys().retained) and client.xlen(Keys().retained) > 3)
        else:
            for _ in range(3):
                assert json.loads(proc.stdout.readline())["guid"]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "Traceback" not in err
        if human:
            assert re.search(r"\ninterrupted: \d+ of 3,000 items processed\n", out), out[-500:]
            assert re.search(r"[\d,]+ items, 1 story", out)
        else:
            summary = json.loads(out.splitlines()[-1])["summary"]
            assert summary["interrupted"] is True and summary["of"] == 3000
            assert 3 <= summary["done"] < 3000 and summary["items"] == summary["done"]


def test_sigterm_during_a_replay_stops_it_and_its_embedded_redis(tmp_path: Path) -> None:
    """SIGTERM ends a replay as Ctrl-C does (between two items, with the summary), exits 143,
    and stops the embedded redis-server it started (it was killed, and the server ran on)."""
    feed = _feed(tmp_path / "many.xml", 3000)
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    argv = ["replay", "--rules", str(RULES), str(feed), "--json", "--state-dir", str(state)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", *argv],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    pid = 0
    try:
        for _ in range(3):
            assert json.loads(proc.stdout.readline())["guid"]
        pid = int((state / "redis.pid").read_text())
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 143, err
        assert "Traceback" not in err
        summary = json.loads(out.splitlines()[-1])["summary"]
        assert summary["interrupted"] is True and 3 <= summary["done"] < 3000
        assert not embedded_redis_running(state, pid)
    finally:
        if proc.poll() is None:
            proc.kill()
        if pid:
            stop_embedded_redis(pid)


def _archive(root: Path) -> Path:
    """Feed files as a user keeps them: the seed feed and its pages, a subdirectory with
    another feed and its pages, a feed without a title whose 40 pages are on the web (not
    read by a replay), and two files that are no feeds."""
    shutil.copytree(SAMPLE_FEEDS, root, ignore=shutil.ignore_patterns("*.json", "*.py", "*.md"))
    shutil.copytree(FIXTURES / "feeds" / "pages", root / "2024" / "pages")
    shutil.copy(FIXTURES / "feeds" / "extra.xml", root / "2024")
    shutil.copy(FIXTURES / "feeds" / "not_a_feed.xml", root / "2024")
    shutil.copy(FIXTURES / "feeds" / "jsonfeed-truncated.json", root)
    untitled = _feed(root / "2024" / "web.xml", 40)
    untitled.write_text(untitled.read_text().replace("<title>t</title>", ""))
    return root


def test_a_replay_skips_unreadable_files_and_counts_unread_pages(
    redis_url: str, tmp_path: Path
) -> None:
    feeds = _archive(tmp_path / "archive")
    args = ("replay", "--rules", str(RULES), str(feeds))
    run = monitor(*args, cwd=tmp_path, redis_url=redis_url)
    assert run.returncode == 2, run.stderr
    errors = run.stderr.strip().splitlines()  # one line per bad file, nothing else
    assert len(errors) == 2, run.stderr
    assert "jsonfeed-truncated.json: not a readable JSON feed" in errors[0]
    assert "not_a_feed.xml: not a readable feed" in errors[1]
    assert "article_unavailable" not in run.stderr
    # the others replayed, the subdirectory's included
    assert "47 items, " in run.stdout  # 5 + 2 + 40
    assert "Ghent council approves tram line" in run.stdout
    assert (
        "40 of 47 items matched on the feed's text, their page unread: "
        '40 "replay reads local files only (no network)"' in run.stdout
    )
    assert "2 of 5 files could not be read and were skipped (each named on stderr)" in run.stdout
    # a feed without a title is named after its file, not its file:// URL
    assert "file://" not in run.stdout and re.search(r"\n\d+ +web\.xml +", run.stdout)

    again = monitor(*args, "--json", cwd=tmp_path, redis_url=redis_url)
    assert again.returncode == 2
    summary = json_lines(again.stdout)[-1]["summary"]
    assert summary["items"] == 47 and summary["files"] == 3
    assert summary["text_from_summary"] == 40
    assert summary["pages_unread"] == {"replay reads local files only (no network)": 40}
    assert [f["file"].rsplit("/", 1)[-1] for f in summary["unreadable_files"]] == [
        "jsonfeed-truncated.json",
        "not_a_feed.xml",
    ]
    detail = monitor(*args, "--log-level", "info", cwd=tmp_path, redis_url=redis_url)
    assert detail.stderr.count("article_unavailable") == 40  # asked for: each one


def test_a_replay_table_fits_the_terminal(redis_url: str, tmp_path: Path) -> None:
    feeds = _archive(tmp_path / "archive")
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    for n in range(4):  # many rules matching one item: a wide rules column
        (rules / f"a-rule-with-a-long-name-{n}.yaml").write_text(
            f"id: a-rule-with-a-long-name-{n}\nname: R{n}\nquery: pyongyang\n"
        )
    rc, out = _on_a_terminal(
        "replay", "--rules", str(rules), str(feeds), cwd=tmp_path, redis_url=redis_url, columns=90
    )
    assert rc == 2
    table = out.split("\r\n\r\n", 1)[0].splitlines()
    assert len(table) == 48 and max(len(line) for line in table) <= 90, table
    # the rules and the title give way (cut, marked …), the other columns stay whole
    row = next(line for line in table if "  Russia and DPRK" in line)  # (oldest first)
    assert re.search(r"  a-rule-with\S*…  ", row)
    assert "  new_story  " in row and "  Fakti.bg  " in row


# --- 9. redis-cli against the configured server ------------------------------------------------


def test_redis_cli_passes_through_to_the_configured_or_embedded_server(
    redis_url: str, client: redis.Redis, tmp_path: Path
) -> None:
    client.hset(Keys().feed("abc"), mapping={"next_poll": "5"})
    run = monitor(
        "redis-cli", "HGET", Keys().feed("abc"), "next_poll", cwd=tmp_path, redis_url=redis_url
    )
    assert run.returncode == 0 and run.stdout.strip() == "5", run.stderr
    scan = monitor(
        "--redis", redis_url, "redis-cli", "--scan", "--pattern", Keys().pattern, cwd=tmp_path
    )  # fmt: skip  (options after redis-cli are redis-cli's)
    assert scan.stdout.split() == [Keys().feed("abc")]
    cfg = tmp_path / "conf" / "monitor.toml"
    cfg.parent.mkdir()
    cfg.write_text("")
    embedded = monitor("--config", str(cfg), "redis-cli", "SET", "k", "v", cwd=tmp_path)
    assert embedded.returncode == 0 and embedded.stdout.strip() == "OK", embedded.stderr
    again = monitor("--config", str(cfg), "redis-cli", "GET", "k", cwd=tmp_path)
    assert again.stdout.strip() == "v"  # the embedded server beside the config, kept
    assert not (cfg.parent / ".monitor" / "redis.sock").exists()  # and stopped after
    failing = monitor("--config", str(cfg), "redis-cli", "NOSUCHCOMMAND", cwd=tmp_path)
    assert "unknown command" in failing.stdout + failing.stderr
