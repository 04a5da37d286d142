"""The `monitor` command as a user runs it: a real process, a real Redis."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from .conftest import FIXTURES, ROOT, RULES, SAMPLE_FEEDS

SCHEMA = json.loads((ROOT / "docs" / "alert.schema.json").read_text())
FEEDS = FIXTURES / "feeds"
ITEM_FIELDS = {"guid", "url", "title", "source", "story_id", "duplicate_of", "rules", "alerts"}


def monitor(*args: str, cwd: Path, redis_url: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    if redis_url:
        env["MONITOR_REDIS_URL"] = redis_url
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.mark.slow
def test_replay_json_then_again_publishes_nothing(tmp_path: Path, redis_url: str) -> None:
    args = ("replay", "--json", "--rules", str(RULES), str(SAMPLE_FEEDS))
    first = monitor(*args, "--fresh", cwd=tmp_path, redis_url=redis_url)
    assert first.returncode == 0, first.stderr
    *items, last = json_lines(first.stdout)
    assert len(items) == 5
    for item in items:
        assert item.keys() >= ITEM_FIELDS
    assert len({i["story_id"] for i in items}) == 1
    assert all(i["duplicate_of"] is None for i in items)
    published = [a for i in items for a in i["alerts"]]
    assert len(published) >= 1
    summary = last["summary"]
    assert summary["items"] == 5 and summary["stories"] == 1
    assert summary["alerts_published"] == len(published)
    documented = replay_json_fields()
    assert {k for i in items for k in i} | summary.keys() <= documented

    second = monitor(*args, cwd=tmp_path, redis_url=redis_url)
    assert second.returncode == 0, second.stderr
    *again, last = json_lines(second.stdout)
    assert [i["story_id"] for i in again] == [i["story_id"] for i in items]
    assert [i["rules"] for i in again] == [i["rules"] for i in items]
    assert all(i["alerts"] == [] for i in again)
    assert last["summary"]["alerts_published"] == 0
    # Why each matching item raised no alert: the reports joining the alerted story within
    # its quiet period are held (said first and again), the one that alerted said so.
    held = {i["source"]: i["alerts_held"] for i in items if i["rules"] and not i["alerts"]}
    assert held.keys() == {"Newser", "RT"}
    for reasons in held.values():
        assert re.fullmatch(
            r"update held: quiet until (\d{4}-\d\d-\d\d )?\d\d:\d\d UTC",
            reasons["dprk-russia-treaty"],
        )
    assert {i["source"]: i["alerts_held"] for i in again if i["source"] in held} == held
    herald = next(i for i in again if i["source"] == "The Korea Herald")
    assert herald["alerts_held"] == {"dprk-russia-treaty": "already alerted for this item"}

    consumed = monitor("consume", "--from-start", "--json", cwd=tmp_path, redis_url=redis_url)
    assert consumed.returncode == 0, consumed.stderr
    alerts = json_lines(consumed.stdout)
    assert [a["id"] for a in alerts] == published
    assert alerts[0]["kind"] == "new" and alerts[0]["rule"]["id"] == "dprk-russia-treaty"
    for alert in alerts:
        jsonschema.validate(alert, SCHEMA)


def replay_json_fields() -> set[str]:
    """The fields the README's section on `replay --json` documents (its tables' first
    column)."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### What `replay --json` prints") :]
    section = section[: section.index("\n## ")]
    return {
        name
        for row in re.findall(r"^\| (`[^|]+`) \|", section, flags=re.M)
        for name in re.findall(r"`(\w+)`", row)
    }


@pytest.mark.slow
def test_human_output_and_consumer_groups(tmp_path: Path, redis_url: str) -> None:
    run = monitor(
        "replay", "--rules", str(RULES), str(SAMPLE_FEEDS), cwd=tmp_path, redis_url=redis_url
    )
    assert run.returncode == 0, run.stderr
    assert "5 items, 1 story (1 new)" in run.stdout
    assert re.search(r"dprk-russia-treaty +3 +1", run.stdout)  # matched, alerts
    status = monitor("status", cwd=tmp_path, redis_url=redis_url).stdout
    # five items say nothing of the memory one item takes (Redis's own outweighs theirs)
    assert "5 items indexed; Redis memory" in status
    assert "(too few items to estimate the memory per item)" in status
    assert "KB per item" not in status

    group = ("consume", "--group", "bots", "--consumer", "b1", "--json")
    got = json_lines(monitor(*group, cwd=tmp_path, redis_url=redis_url).stdout)
    assert got and got[0]["kind"] == "new"
    assert monitor(*group, cwd=tmp_path, redis_url=redis_url).stdout == ""  # acked
    one = monitor("consume", "--from-start", "--count", "1", cwd=tmp_path, redis_url=redis_url)
    assert "treaty — new" in one.stdout and "also reported by" in one.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("replay", "--rules", str(RULES), "no/such/feeds"), "no/such/feeds: no such file"),
        (("replay", "--rules", str(RULES), str(FEEDS / "not_a_feed.xml")), "not a readable feed"),
        (("replay", "--rules", "BROKEN", str(SAMPLE_FEEDS)), "rule.yaml:3:19: query: expected ')'"),
        (("rules", "check", "BROKEN"), "rule.yaml:3:19"),
        (("consume", "--count", "0"), "--count must be at least 1"),
    ],
)
def test_bad_input_is_one_line_and_a_nonzero_exit(
    tmp_path: Path, redis_url: str, args: tuple[str, ...], expected: str
) -> None:
    broken = tmp_path / "BROKEN"
    broken.mkdir()
    (broken / "rule.yaml").write_text("id: r1\nname: R\nquery: 'putin AND (treaty'\n")
    run = monitor(*args, cwd=tmp_path, redis_url=redis_url)
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    assert expected in run.stderr


def test_rules_check_and_test_on_the_bundled_rules(tmp_path: Path) -> None:
    check = monitor("rules", "check", str(RULES), cwd=tmp_path)
    assert check.returncode == 0 and "all valid" in check.stdout
    test = monitor("rules", "test", str(RULES), cwd=tmp_path)
    assert test.returncode == 0 and " 0 failed" in test.stdout


def test_rules_check_refuses_a_misspelt_near_with_file_line_and_column(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yaml").write_text("id: r\nname: R\nquery: 'putin NEAR/x kim'\n")
    check = monitor("rules", "check", str(rules), cwd=tmp_path)
    assert check.returncode == 1
    assert check.stderr.splitlines() == [
        f"{rules}/r.yaml:3:15: query: 'NEAR/x' is not an operator: write NEAR/n, n a number of "
        "words (NEAR/5), or NEAR alone (n = 5)"
    ]


def test_embedded_redis_keeps_alerts_between_commands(tmp_path: Path) -> None:
    replay = monitor("replay", "--rules", str(RULES), str(SAMPLE_FEEDS), cwd=tmp_path)
    assert replay.returncode == 0, replay.stderr
    assert (tmp_path / ".monitor" / "appendonly.aof").stat().st_size > 0
    assert not (tmp_path / ".monitor" / "redis.sock").exists()  # stopped at exit
    consumed = monitor("consume", "--from-start", "--json", cwd=tmp_path)
    alerts = json_lines(consumed.stdout)
    assert alerts and alerts[0]["kind"] == "new"


@pytest.mark.slow
def test_rules_explain_says_why(tmp_path: Path) -> None:
    herald = "https://www.koreaherald.com/article/3421317"
    hit = monitor(
        "rules",
        "explain",
        "dprk-russia-treaty",
        "--rules",
        str(RULES),
        "--feeds",
        str(SAMPLE_FEEDS),
        "--url-from-replay",
        herald,
        cwd=tmp_path,
    )
    assert hit.returncode == 0, hit.stderr
    assert "MATCH, score" in hit.stdout and "«strategic partnership»" in hit.stdout
    miss = monitor(
        "rules",
        "explain",
        "dprk-russia-treaty",
        "--rules",
        str(RULES),
        "--text",
        "Putin met Kim Jong Un in Pyongyang.",
        cwd=tmp_path,
    )
    assert miss.returncode == 1
    assert "NO MATCH" in miss.stdout and "✗ treaty OR pact" in miss.stdout


def test_counts_the_cli_prints_take_the_right_number(capsys: pytest.CaptureFixture) -> None:
    from monitor.cli.output import counted, print_dead, print_table
    from monitor.pipeline.replay import Summary
    from monitor.units import plural

    assert [counted(n, "report") for n in (0, 1, 2)] == ["0 reports", "1 report", "2 reports"]
    assert (
        counted(1, "story", "stories") == "1 story" and plural(3, "story", "stories") == "stories"
    )
    letter = {"entry": "1-0", "group": "g", "deliveries": 1, "reason": "refused", "alert": {}}
    print_dead(letter, as_json=False)
    summary = Summary(items=1, errors=1)
    summary.outcomes["near_duplicate"] = 1
    print_table([], summary)
    out = capsys.readouterr().out
    assert "g, consumer -, 1 delivery: refused" in out
    assert (
        "1 item, 0 stories (0 new), 1 near-duplicate, 0 already seen, 0 alerts published, " in out
    )
    assert "1 error" in out and "1 errors" not in out
