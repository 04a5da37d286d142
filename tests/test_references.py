"""Names cited in prose stay true: every `Class.member` that a docstring, a comment or a Lua
header of `monitor/` cites, where `Class` is one of the project's classes, names a member
that class (or a base it inherits from) defines."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import monitor

PACKAGE = Path(monitor.__file__).parent
CITED = re.compile(r"\b([A-Z][A-Za-z0-9]+)\.(_{0,2}[a-z][a-z0-9_]*)\b")


def _classes() -> dict[str, tuple[set[str], list[str]]]:
    """Each class of the package: the names it defines, and its bases' names."""
    found: dict[str, tuple[set[str], list[str]]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            names: set[str] = set()
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    names.add(item.name)
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    names.add(item.target.id)
                elif isinstance(item, ast.Assign):
                    names |= {t.id for t in item.targets if isinstance(t, ast.Name)}
            for sub in ast.walk(node):  # attributes set in methods: self.x = ...
                if (
                    isinstance(sub, ast.Attribute)
                    and isinstance(sub.ctx, ast.Store)
                    and isinstance(sub.value, ast.Name)
                    and sub.value.id == "self"
                ):
                    names.add(sub.attr)
            bases = [b.id if isinstance(b, ast.Name) else ast.unparse(b) for b in node.bases]
            old = found.get(node.name, (set(), []))
            found[node.name] = (old[0] | names, old[1] + bases)
    return found


def _defines(classes: dict[str, tuple[set[str], list[str]]], name: str, member: str) -> bool:
    if name not in classes:
        return True  # not ours (a library's class, a module, a word)
    names, bases = classes[name]
    generic = {"Generic", "Protocol", "Exception", "enum.StrEnum", "NamedTuple"}
    return member in names or any(
        _defines(classes, base.split("[")[0], member) for base in bases if base not in generic
    )


def _prose(path: Path) -> list[tuple[int, str]]:
    """(line, text) of the file's comments and docstrings (a Lua file: its comments)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".lua":
        return [(n, line) for n, line in enumerate(text.splitlines(), 1) if "--" in line]
    found = [
        (token.start[0], token.string)
        for token in tokenize.generate_tokens(io.StringIO(text).readline)
        if token.type == tokenize.COMMENT
    ]
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=False)
            if doc and node.body:
                found.append((node.body[0].lineno, doc))
    return found


def test_cited_members_exist() -> None:
    classes = _classes()
    wrong = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {name}.{member}"
        for path in sorted([*PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.lua")])
        for line, text in _prose(path)
        for name, member in CITED.findall(text)
        if not _defines(classes, name, member)
    ]
    assert wrong == []
