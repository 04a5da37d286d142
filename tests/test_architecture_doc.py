"""docs/architecture.md stays true to the code: the names it cites exist, every key of
`Keys` has a row in its key table and every package a row in its layers table."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

from monitor.store.keys import Keys

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")

# `monitor/dedup/index.py:DedupIndex.place`, `monitor/extract.py:extract`, `monitor/dedup/post.lua`
CITED = re.compile(r"\bmonitor/[\w/]+\.\w+(?::[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)?")
# a bare `Class.method` in backticks, such as `SinkRunner.handle`, and a script, `record.lua`
BARE = re.compile(r"`([A-Z]\w*)\.([A-Za-z_]\w*)`")
SCRIPT = re.compile(r"`(\w+\.lua)`")


@cache
def _names(path: Path) -> set[str]:
    """What a module defines at its top: its functions and classes, and `Class.member` for
    the methods, properties and class attributes of each class."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.add(node.name)
            for member in node.body:
                if isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef):
                    names.add(f"{node.name}.{member.name}")
                elif isinstance(member, ast.Assign | ast.AnnAssign):
                    targets = member.targets if isinstance(member, ast.Assign) else [member.target]
                    names |= {f"{node.name}.{t.id}" for t in targets if isinstance(t, ast.Name)}
    return names


def _table(heading: str) -> str:
    """The text of the doc's section that starts with `heading`."""
    return DOC.split(heading, 1)[1].split("\n## ", 1)[0]


def test_every_cited_name_exists() -> None:
    wrong = []
    for cited in sorted(set(CITED.findall(DOC))):
        file, _, name = cited.partition(":")
        path = ROOT / file
        if not path.is_file():
            wrong.append(f"{cited}: no such file")
        elif name and name not in _names(path):
            wrong.append(f"{cited}: {file} defines no {name}")
    assert wrong == []


def test_every_bare_name_exists() -> None:
    defined = set().union(*(_names(p) for p in (ROOT / "monitor").rglob("*.py")))
    defined |= {p.name for p in (ROOT / "monitor").rglob("*.lua")}
    cited = {f"{c}.{m}" for c, m in BARE.findall(DOC)} | set(SCRIPT.findall(DOC))
    assert sorted(cited - defined) == []


def test_every_key_has_a_row() -> None:
    members = {name for name in vars(Keys) if not name.startswith("_") and name != "prefix"}
    rows = set(re.findall(r"^\| `(\w+)` \|", _table("## 2. Keys in Redis"), re.M))
    assert members - rows == set()
    assert rows - members == set()


def test_every_package_has_a_row() -> None:
    layers = _table("## 1. The stages")
    packages = {p.parent for p in (ROOT / "monitor").glob("*/__init__.py")}
    missing = [p.name for p in sorted(packages) if f"`monitor/{p.name}/`" not in layers]
    modules = [
        p.name for p in (ROOT / "monitor").glob("*.py") if f"`monitor/{p.name}`" not in layers
    ]
    assert missing == []
    assert modules == []
