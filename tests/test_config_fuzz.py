"""Fuzzing monitor.toml and MONITOR_* (hypothesis): arbitrary values for every known key
(wrong types, negative, huge, NaN and infinity, empty, unicode, tables where a scalar is
expected) and unknown keys. Whatever is given, `load` builds valid settings or raises a
one-line ConfigError; the CLI says it on one line of stderr."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from monitor.config import load
from monitor.config.load import _SECTIONS
from monitor.config.settings import Settings
from monitor.errors import ConfigError
from monitor.sinkconfig import KEYS as SINK_KEYS

from .conftest import ROOT

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=EXAMPLES or 400,  # FUZZ_EXAMPLES=N for a longer run
    deadline=None,
    derandomize=not EXAMPLES,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

TOP = [f.name for f in dataclasses.fields(Settings) if f.name not in (*_SECTIONS, "feeds")]
TOP += ["sinks", "data_dir", "colour"]
FEED_KEYS = ["url", "name", "interval", "tags", "colour"]
STRINGS = [
    "",
    " ",
    "nan",
    "inf",
    "-inf",
    "1e309",
    "-1",
    "0",
    "1" * 40,
    "9" * 400 + "d",
    "1e9w",
    "48h",
    "0.5",
    "true",
    "\x00",
    "\x7f",
    "é",
    "🦀",
    "a,b,,c",
    "127.0.0.1:0",
    "127.0.0.1:99999",
    ":80",
    "[::1]:8080",
    "http://[::1",
    "http://x:99999/",
    "https://feed.example/rss",
    "redis://localhost:6379/0",
    "unix://",
    "monitor:",
    "08:00",
    "99:99",
    "1h",
    "webhook",
    "apprise",
    "high",
]
NUMBERS = st.sampled_from([0, -1, 1, 2**63, -(2**63), 10**400]) | st.integers()
FLOATS = st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e-320, 1e308]) | st.floats()


class Raw(str):
    """TOML text written as is (a date or time)."""


SCALAR = (
    st.sampled_from(STRINGS)
    | st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
    | NUMBERS
    | FLOATS
    | st.booleans()
    | st.sampled_from(["1979-05-27T07:32:00Z", "1979-05-27", "07:32:00"]).map(Raw)
)
VALUE = st.recursive(
    SCALAR,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "url", "name", "x"]), inner, max_size=3)
    ),
    max_leaves=6,
)


def toml(value: Any) -> str:
    """A value as TOML (inline tables and arrays)."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else {math.inf: "inf", -math.inf: "-inf"}.get(value, repr(value))
        )
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml(v)}" for k, v in value.items()) + "}"


@functools.cache
def table_of(keys: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    """A table of some of `keys` (and, rarely, others), each with any value; mostly
    plausible scalars so that examples get past the first key. (One strategy object per
    key set, built once: Hypothesis validates each new strategy it is given to draw from,
    which took most of this test's time when they were built afresh for every example.)"""
    return st.dictionaries(st.sampled_from(keys) | st.text(max_size=5), VALUE, max_size=4)


KIND = st.sampled_from(["none", "table", "table", "scalar"])
SECTION_KEYS = {
    name: tuple(f.name for f in dataclasses.fields(cls)) for name, cls in _SECTIONS.items()
}
ARRAYS = [("feeds", tuple(FEED_KEYS)), ("sinks", tuple(sorted(SINK_KEYS)))]
ENTRIES = {array: st.lists(table_of(keys), max_size=2) for array, keys in ARRAYS}


@st.composite
def documents(draw) -> str:
    top = draw(table_of(tuple(TOP)))
    lines = [f"{json.dumps(k)} = {toml(v)}" for k, v in top.items()]
    for name, keys in SECTION_KEYS.items():
        kind = draw(KIND)
        if kind == "scalar":
            lines.append(f"{name} = {toml(draw(SCALAR))}")
        elif kind == "table":
            body = draw(table_of(keys))
            pairs = (f"{json.dumps(k)} = {toml(v)}" for k, v in body.items())
            lines.append(f"[{name}]\n" + "\n".join(pairs))
    for array, _ in ARRAYS:
        if array in top:  # given as a plain value already
            continue
        for entry in draw(ENTRIES[array]):
            body = "\n".join(f"{json.dumps(k)} = {toml(v)}" for k, v in entry.items())
            lines.append(f"[[{array}]]\n{body}")
    return "\n".join(lines) + "\n"


ENV_KEYS = [f"MONITOR_{k.upper()}" for k in TOP if k != "sinks"]
ENV_KEYS += [
    f"MONITOR_{s.upper()}_{f.name.upper()}"
    for s, cls in _SECTIONS.items()
    for f in dataclasses.fields(cls)
]
ENV_KEYS += ["MONITOR_SINKS_HOOK_URL", "MONITOR_SINKS_HOOK_TIMEOUT", "MONITOR_NOPE"]
ENV = st.dictionaries(
    st.sampled_from(ENV_KEYS),
    st.sampled_from(STRINGS) | st.text(st.characters(exclude_categories=["Cs"]), max_size=20),
    max_size=3,
)


def loads_or_refuses(path: Path, env: dict[str, str]) -> None:
    try:
        loaded = load(path, env=env)
    except ConfigError as exc:
        assert "\n" not in str(exc), str(exc)  # the CLI's one line
        return
    numbers = [
        getattr(part, f.name)
        for part in (loaded, *(getattr(loaded, s) for s in _SECTIONS), *loaded.sinks)
        for f in dataclasses.fields(part)
    ]
    assert all(math.isfinite(n) for n in numbers if isinstance(n, float)), loaded
    assert loaded.window_seconds > 0


@pytest.mark.slow
@FUZZ
@given(documents(), ENV)
@example("story_window_hours = nan\n", {})
@example("[daemon]\nbatch = inf\n", {})
@example("retention_days = 1e308\n", {})
@example("", {"MONITOR_SCHEDULE_JITTER": "nan"})
@example('[[sinks]]\nname = "hook"\ntype = "webhook"\nurl = "https://x.example/"\n'
         'attempts = inf\n', {})  # fmt: skip
def test_any_settings_load_or_say_why(tmp_path: Path, text: str, env: dict[str, str]) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text(text, encoding="utf-8")
    loads_or_refuses(path, env)


@settings(FUZZ, max_examples=EXAMPLES or 150)
@given(st.binary(max_size=300))
def test_any_bytes_as_monitor_toml(tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "monitor.toml"
    path.write_bytes(body)
    loads_or_refuses(path, {})


@pytest.mark.parametrize(
    "text",
    [
        "story_window_hours = nan\n",
        "[daemon]\nbatch = inf\n",
        "[web]\nlisten = {a = 1}\n",
        "feeds = 3\n",
        b"\xff\xfe".decode("latin-1"),
    ],
)
def test_the_cli_says_a_bad_config_in_one_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text(text, encoding="latin-1")
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(path), "status"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("monitor: error: ") and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr
