"""The documentation's commands are examples that work: every `monitor …` in README.md and
docs/*.md parses; the README is run top to bottom (the replay, reading the alerts, then the
daemon walk-through, in one checkout); the consumer guide's group example and the operations
guide's recipes run as written. Only what cannot run here is replaced: the venv's `monitor`
by this interpreter's, and the walk-through's ports by free ones."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from monitor.cli import _parser

from .conftest import ROOT
from .feedserver import FeedServer
from .test_daemon import serve_sample

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MONITOR = f"{shlex.quote(sys.executable)} -m monitor"
# Placeholders in the docs, and what stands for them here.
PLACEHOLDERS = {
    "URL|NAME": "sample",
    "[DIR]": "",
    "[--json]": "--json",
    "[--group G]": "--group g",
    "ID…": "id1",
    "ARGS…": "PING",
    "<id>": "abc",
}


def sh_blocks(text: str) -> Iterator[str]:
    yield from re.findall(r"```sh\n(.*?)```", text, flags=re.S)


def monitor_commands(text: str) -> Iterator[list[str]]:
    """The arguments of every `monitor` command in the text's sh blocks and code spans."""
    lines = [line for block in sh_blocks(text) for line in block.splitlines()]
    lines += re.findall(r"`((?:\.venv/bin/)?monitor [^`]+)`", text)
    for line in lines:
        for old, new in PLACEHOLDERS.items():
            line = line.replace(old, new)
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue  # a fragment of Python or prose, not a command line
        command: list[str] = []
        for word in [*words, "&&"]:
            if word in ("&&", "|", "&", ";", "||", ">") or word.startswith(">"):
                if command and Path(command[0]).name == "monitor":
                    yield command[1:]
                command = []
            else:
                command.append(word)


def test_every_documented_monitor_command_parses() -> None:
    found, failures = 0, []
    for doc in DOCS:
        for args in monitor_commands(doc.read_text()):
            found += 1
            if "redis-cli" in args:
                args = args[: args.index("redis-cli") + 1]
            try:
                parsed = _parser().parse_args(args)
            except SystemExit:
                failures.append(f"{doc.name}: monitor {shlex.join(args)}")
                continue
            if not hasattr(parsed, "run"):
                failures.append(f"{doc.name}: monitor {shlex.join(args)} (no command)")
    assert found > 50  # the extraction works
    assert failures == []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """What the README needs of a checkout, and no Redis settings from outside."""
    work = tmp_path / "checkout"
    for name in ("sample_feeds", "rules", "deploy"):
        shutil.copytree(ROOT / name, work / name)
    return work


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}


def run_line(line: str, cwd: Path) -> subprocess.CompletedProcess:
    line = line.replace(".venv/bin/monitor", MONITOR)
    return subprocess.run(
        ["bash", "-c", line], cwd=cwd, env=env(), capture_output=True, text=True, timeout=120
    )


def readme_block(after: str) -> str:
    text = (ROOT / "README.md").read_text()
    return next(sh_blocks(text[text.index(after) :]))


@pytest.mark.slow
def test_the_readme_top_to_bottom(checkout: Path) -> None:
    # 1. Try it: the replay (the venv is this test's interpreter: install is not repeated).
    (try_it,) = [x for x in readme_block("**1. Install").splitlines() if "monitor replay" in x]
    replay = run_line(try_it.split("&&")[-1], checkout)
    assert replay.returncode == 0, replay.stderr
    shown = _text_block("## What the replay shows")
    for line in shown.strip().splitlines():
        assert line.rstrip() in replay.stdout, line  # the README shows what it prints
    # ... then read the alerts
    for line in readme_block("Then read the alerts").strip().splitlines():
        read = run_line(line, checkout)
        assert read.returncode == 0 and "treaty" in read.stdout, (line, read.stderr)

    # 2. The daemon walk-through, after the replay, in the same checkout.
    feed_port, http_port = free_port(), free_port()
    config = checkout / "deploy" / "monitor.toml"
    config.write_text(
        config.read_text().replace(":8000/", f":{feed_port}/").replace(":9108", f":{http_port}")
    )
    steps = [
        line.replace("8000", str(feed_port)).replace("9108", str(http_port))
        for line in readme_block("A walk-through").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    out, err = checkout / "walk.out", checkout / "walk.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        shell = subprocess.Popen(
            ["bash"],
            stdin=subprocess.PIPE,
            stdout=stdout,
            stderr=stderr,
            cwd=checkout,
            env=env(),
            text=True,
        )
    assert shell.stdin is not None
    try:
        # Pasted whole: the block waits for what it needs itself. Only its pause for the
        # daemon to process the reports becomes a wait for the alert (a loaded machine).
        alert = "DPRK\u2013Russia treaty — new"
        script = [
            f"until grep -q '{alert}' {out}; do sleep 0.5; done" if s.startswith("sleep ") else s
            for s in steps
        ]
        shell.stdin.write("\n".join(s.replace(".venv/bin/monitor", MONITOR) for s in script))
        shell.stdin.write("\nwait\n")
        shell.stdin.close()
        assert shell.wait(timeout=180) == 0
        said = out.read_text()
        print(said)  # shown when the test fails
        assert alert in said
        assert "monitor_alerts_published_total 1.0" in said  # /metrics, curled as written
        assert '"status": "ok"' in said  # /healthz
        # feeds list: 200, or 304 when the daemon's first poll came after the feed filled
        assert re.search(r"\nsample +\S+ \S+ +(200|304) ", said)
        assert "daemons running: 1" in said  # status
        assert f"state in {checkout / 'demo' / '.monitor'}" in said
    finally:
        if shell.poll() is None:
            shell.kill()
    assert '"event": "daemon_stopped"' in err.read_text()
    assert "Traceback" not in err.read_text()


def _text_block(heading: str) -> str:
    """The first plain ``` block after the heading."""
    text = (ROOT / "README.md").read_text()
    after = text[text.index(heading) :]
    return after.split("```\n", 2)[1]


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.slow
def test_the_consumer_guides_group_example(checkout: Path) -> None:
    text = (ROOT / "docs" / "consumers.md").read_text()
    block = next(b for b in sh_blocks(text) if "--group demo" in b)
    checked = 0
    for line in block.strip().splitlines():
        run = run_line(line.split("#")[0].replace("monitor ", ".venv/bin/monitor ", 1), checkout)
        assert run.returncode == 0, (line, run.stderr)
        if expected := re.search(r"# (\d+):", line):
            assert run.stdout.strip() == expected.group(1), line
            checked += 1
    assert checked == 3


@pytest.mark.slow
def test_the_operations_guides_recipes(
    feed_server: FeedServer, redis_url: str, tmp_path: Path
) -> None:
    """Troubleshooting a feed and handling dead letters, as written."""
    serve_sample(feed_server, count=1)
    (tmp_path / "monitor.toml").write_text(
        f'rules_dir = "{ROOT / "rules"}"\n[[feeds]]\nurl = "{feed_server.url("/feed.xml")}"\n'
        'name = "NAME"\n'
    )
    text = (ROOT / "docs" / "operations.md").read_text()
    recipes = [c for c in re.findall(r"`(monitor [^`]+)`", text) if "--config monitor.toml" in c]
    recipes += [
        "monitor consume --dead",
        "monitor redis-cli XTRIM 'monitor:{monitor:alerts}:dead' MAXLEN 0",
    ]
    assert any("poll-now" in r for r in recipes) and any("HDEL" in r for r in recipes)
    from monitor.config import FeedConfig
    from monitor.ingest.poll import feed_id

    fid = feed_id(FeedConfig(url=feed_server.url("/feed.xml")))
    environment = {**env(), "MONITOR_REDIS_URL": redis_url}
    # The feed polled before (as a daemon would have): it has an ETag, its entry is seen.
    first = subprocess.run(
        [*shlex.split(MONITOR), "--config", "monitor.toml", "feeds", "poll-now", "NAME"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "HTTP 200, 1 entries, 1 new" in first.stdout, first.stderr
    for recipe in recipes:
        if " run" in recipe:
            continue  # the daemon: run by the README test and test_daemon.py
        line = recipe.replace("<id>", fid).replace("monitor ", f"{MONITOR} ", 1)
        run = subprocess.run(
            ["bash", "-c", line],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, (recipe, run.stderr)
        if "poll-now" in recipe:  # after the HDEL: a full fetch, the entry already seen
            assert "HTTP 200, 1 entries, 0 new" in run.stdout, run.stdout
        if "HDEL" in recipe:
            assert run.stdout.strip() == "2"  # both fields were there (the second one empty)


@pytest.mark.slow
def test_the_operations_guides_local_cluster(checkout: Path) -> None:
    """A new user's cluster, as written: start three masters, point MONITOR_REDIS_URL at one
    node, replay, read the alert, stop (on free ports instead of 7001-7003)."""
    from monitor.store.localcluster import free_ports

    text = (ROOT / "docs" / "operations.md").read_text()
    block = next(b for b in sh_blocks(text) if "redis-cluster start" in b)
    port = free_ports(3)[0]
    script = (
        block.replace("redis-cluster start cluster/", f"redis-cluster start cluster/ --port {port}")
        .replace("127.0.0.1:7001", f"127.0.0.1:{port}")
        .replace(".venv/bin/monitor", MONITOR)
    )
    try:
        run = subprocess.run(
            ["bash", "-ec", script],
            cwd=checkout,
            env=env(),
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        subprocess.run(
            [*shlex.split(MONITOR), "redis-cluster", "stop", "cluster/"],
            cwd=checkout,
            env=env(),
            capture_output=True,
            timeout=60,
        )
    assert run.returncode == 0, run.stderr
    assert "3 nodes on 127.0.0.1" in run.stdout
    assert "5 items, 1 story (1 new)" in run.stdout and "1 alert published" in run.stdout
    assert "dprk-russia-treaty" in run.stdout and "[high]" in run.stdout
    assert "stopped the nodes of cluster" in run.stdout


@pytest.mark.slow
def test_the_consumer_guides_python_example_after_the_readmes_replay(checkout: Path) -> None:
    """Right after the README's replay (whose embedded Redis is gone), as a newcomer runs it."""
    replay = run_line(".venv/bin/monitor replay", checkout)
    assert replay.returncode == 0, replay.stderr
    socket = checkout / ".monitor" / "redis.sock"
    assert not socket.exists()  # the replay stopped its server
    text = (ROOT / "docs" / "consumers.md").read_text()
    example = text[text.index("```python\n") + len("```python\n") :].split("```", 1)[0]
    run = subprocess.run(
        [sys.executable, "-c", example],
        cwd=checkout,
        env=env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1].startswith("new DPRK"), run.stdout  # the treaty alert
    assert not socket.exists()  # and it stopped the server it started
