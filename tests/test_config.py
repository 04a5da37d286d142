"""Settings: defaults, file, environment and flags, each validated with the key's name."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import Settings, load
from monitor.errors import ConfigError


def test_precedence_file_then_environment_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text('prefix = "file:"\nstory_window_hours = 24\nrules_dir = "r1"\n')
    env = {"MONITOR_PREFIX": "env:", "MONITOR_STORY_WINDOW_HOURS": "48", "HOME": "/x"}
    settings = load(path, env=env, rules_dir="r2", redis_url=None)
    assert settings.prefix == "env:"
    assert settings.story_window_hours == 48.0
    assert settings.rules_dir == Path("r2")
    assert settings.redis_url == ""  # None means "not given"
    assert settings.window_seconds == 48 * 3600


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("colour = 1\n", {}, "unknown setting 'colour'"),
        (
            "[daemon]\nlistn = '127.0.0.1:0'\n",
            {},
            "unknown setting 'daemon.listn' (did you mean daemon.listen?)",
        ),
        (
            "",
            {"MONITOR_DAEMON_LISTN": "x"},
            "MONITOR_DAEMON_LISTN: no such setting (did you mean MONITOR_DAEMON_LISTEN?)",
        ),
        ("story_window_hours = 'long'\n", {}, "story_window_hours expects a number, got 'long'"),
        ("story_window_hours = '2d'\n", {}, "story_window_hours expects a number"),  # hours
        (
            "",
            {"MONITOR_ALERTS_MAX_AGE": "2 fortnights"},
            "MONITOR_ALERTS_MAX_AGE: max_age expects a duration like 48h, 2d, 2w or seconds, "
            "got '2 fortnights'",
        ),
        ("[http]\nread_timeout = true\n", {}, "read_timeout expects a duration like 48h"),
        ("[daemon]\nbatch = 'lots'\n", {}, "batch expects a whole number, got 'lots'"),
        ("", {"MONITOR_ALERTS_MAXLEN": "many"}, "MONITOR_ALERTS_MAXLEN: alerts_maxlen expects"),
        ("", {"MONITOR_REDIS_URL": "localhost:6379"}, "redis_url: expected redis://"),
        ("", {"MONITOR_STORY_THRESHOLD": "1.5"}, "story_threshold: must be in (0, 1]"),
        ("prefix = 'a b'\n", {}, "prefix: must be non-empty"),
        ("= broken", {}, "monitor.toml"),
    ],
)
def test_bad_settings_name_the_key(tmp_path: Path, text: str, env: dict, message: str) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load(path, env=env)
    assert message in str(info.value)


def test_defaults_are_valid() -> None:
    assert load(env={}) == Settings()


def test_the_example_configuration_is_valid() -> None:
    from .conftest import ROOT

    settings = load(ROOT / "deploy" / "monitor.toml", env={})
    assert settings.feeds and settings.feeds[0].interval == 60
    assert settings.daemon.listen.startswith("127.0.0.1:")


def test_feed_entries_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text('[[feeds]]\nurl = "ftp://example.org/feed"\n')
    with pytest.raises(ConfigError, match="feed #1: feeds: url must be an http"):
        load(path, env={})
    path.write_text(
        '[[feeds]]\nurl = "https://a.example/f"\n[[feeds]]\nurl = "https://a.example/f"\n'
    )
    with pytest.raises(ConfigError, match="listed twice"):
        load(path, env={})
    path.write_text("[http]\nper_host = 0\n")
    with pytest.raises(ConfigError, match=r"http\.per_host: must be positive"):
        load(path, env={})
    with pytest.raises(ConfigError, match="MONITOR_NOPE: no such setting"):
        load(env={"MONITOR_NOPE": "1"})
    assert load(env={"MONITOR_HTTP_READ_TIMEOUT": "5"}).http.read_timeout == 5


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2w", 14 * 86400),
        ("2 weeks", 14 * 86400),
        ("1 week", 7 * 86400),
        ("48h", 48 * 3600),
        ("36 hours", 36 * 3600),
        ("2d", 2 * 86400),
        ("3 Days", 3 * 86400),
        ("90 min", 5400),
        ("30 seconds", 30),
        ("172800", 172800),
    ],
)
def test_durations_in_settings_as_people_write_them(text: str, seconds: float) -> None:
    assert load(env={"MONITOR_ALERTS_MAX_AGE": text}).alerts.max_age == seconds


def test_words_that_are_no_unit_are_no_duration() -> None:
    from monitor.units import parse_duration

    for text in ("2 months", "2 mo", "2", "weeks", "2 w eeks", "-2d"):
        with pytest.raises(ValueError, match="expected a duration"):
            parse_duration(text)
