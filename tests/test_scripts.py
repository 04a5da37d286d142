"""Every Lua script Python calls has one typed call (monitor.store.scripts.Call) whose fields
are the KEYS and ARGV its header names, in the same order."""

from __future__ import annotations

import dataclasses
import importlib
import re
from importlib import resources
from pathlib import Path

import pytest

from monitor.store.scripts import Call

ROOT = Path(__file__).resolve().parent.parent
MODULES = ("monitor.dedup.calls", "monitor.delivery.queue", "monitor.ingest.items")
MODULES += ("monitor.store.streams", "monitor.retained.items", "monitor.retained.index")
MODULES += ("monitor.retained.adds",)
# `-- ARGV[2] name: ...`; `[3..]` the rest (a list), `[4]?` one that may be absent
HEADER = re.compile(r"^-- (KEYS|ARGV)\[(\d+)(\.\.)?\](\?)? (\w+):", re.MULTILINE)


def calls() -> list[type[Call]]:
    for module in MODULES:
        importlib.import_module(module)
    # (a slotted dataclass is a new class: the one it replaced may linger among subclasses)
    unique = {(c.package, c.script): c for c in Call.__subclasses__()}
    return [unique[name] for name in sorted(unique)]


def header(text: str, kind: str) -> list[tuple[str, bool, bool]]:
    """The header's (name, rest, optional) of each KEYS or ARGV, checked numbered 1, 2, ..."""
    found = [m for m in HEADER.finditer(text) if m[1] == kind]
    assert [int(m[2]) for m in found] == list(range(1, len(found) + 1)), kind
    return [(m[5], bool(m[3]), bool(m[4])) for m in found]


def contract(call: type[Call], keys: bool) -> list[tuple[str, bool, bool]]:
    """The call's (name, rest, optional) of its KEYS or ARGV fields."""
    return [
        (f.name, bool(f.metadata.get("spread")), f.default is None)
        for f in dataclasses.fields(call)  # type: ignore[arg-type]
        if f.metadata.get("key", False) is keys
    ]


@pytest.mark.parametrize("call", calls(), ids=lambda c: f"{c.package}.{c.script}")
def test_a_call_has_the_fields_its_script_header_names(call: type[Call]) -> None:
    text = (resources.files(call.package) / f"{call.script}.lua").read_text(encoding="utf-8")
    assert contract(call, keys=True) == header(text, "KEYS")
    assert contract(call, keys=False) == header(text, "ARGV")
    assert "ARGV[" in text  # every script takes arguments: a header with none is misread


def test_every_script_python_calls_has_a_call() -> None:
    """A `.lua` with a KEYS/ARGV header is called from Python (the others are included
    fragments: summary.lua, frequencies.lua)."""
    scripts = {
        path.relative_to(ROOT).with_suffix("").as_posix()
        for path in (ROOT / "monitor").rglob("*.lua")
        if HEADER.search(path.read_text(encoding="utf-8"))
    }
    covered = {f"{c.package.replace('.', '/')}/{c.script}" for c in calls()}
    assert covered == scripts
    assert len(scripts) == 14


def test_optional_and_rest_arguments_are_left_out_or_spread() -> None:
    from monitor.dedup.calls import RecordCall
    from monitor.delivery.queue import ClaimPublishCall

    publish = ClaimPublishCall(
        marker="m",
        stream="s",
        counter="c",
        alert="{}",
        marker_ttl=1,
        maxlen=2,
        alert_id="a",
        min_id="0",
    )
    assert publish.keys() == ["m", "s", "c"]
    assert publish.argv() == ["{}", 1, 2, "a", "0", 0]
    claiming = dataclasses.replace(
        publish, claims="h", rule="r", item="i", claim_ttl=3, now=4.0, quiet=5.0, claim=0
    )
    assert claiming.keys() == ["m", "s", "c", "h"] and claiming.argv()[6:] == [
        "r",
        "i",
        3,
        4.0,
        5.0,
        0,
    ]
    record = RecordCall(
        entry="e",
        story="s",
        summary="y",
        activity="a",
        active="t",
        id="i",
        when=1.0,
        window=60,
        centroid_size=80,
        names_kept=100,
        figures_kept=60,
        fields=["story", "s", "outcome", "new_story"],
    )
    argv = record.argv()
    assert record.keys() == ["e", "s", "y", "a", "t"]
    assert len(argv) == 28 + 4 and argv[28:] == ["story", "s", "outcome", "new_story"]
    assert argv[3:9] == [""] * 6 and argv[12:22] == [""] * 10  # no check, no indexing
