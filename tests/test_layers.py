"""The house by stage: imports of `monitor/` run downward only, and no module imports
itself back through others (imports inside functions count too: a deferred import is still
a dependency)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import monitor

PACKAGE = Path(monitor.__file__).parent

# Top to bottom. A unit may import its own modules and any unit below it, never one above.
LAYERS: list[tuple[str, ...]] = [
    ("monitor.__main__",),
    ("monitor.cli",),
    ("monitor.daemon",),
    ("monitor.web",),
    ("monitor.pipeline",),
    ("monitor.delivery",),
    ("monitor.rules",),
    ("monitor.dedup",),
    ("monitor.extract",),
    ("monitor.ingest",),
    ("monitor.retained",),
    ("monitor.store",),
    ("monitor.config",),
    ("monitor.sinkconfig",),
    ("monitor.alertfilter", "monitor.units", "monitor.model", "monitor.text", "monitor.log"),
    ("monitor.errors",),
    ("monitor", "monitor._moved"),
]


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(p): p for p in PACKAGE.rglob("*.py")}


def _unit(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and (PACKAGE / parts[1]).is_dir():
        return ".".join(parts[:2])
    return module


def _imports() -> dict[str, set[str]]:
    """Each module's imports of other modules of the package, wherever they are written."""
    found: dict[str, set[str]] = defaultdict(set)
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            found[module] |= {n for n in names if n in MODULES and n != module}
    return found


def test_every_unit_has_a_layer() -> None:
    placed = {unit for layer in LAYERS for unit in layer}
    assert {_unit(m) for m in MODULES} - placed == set()


def test_imports_run_downward_only() -> None:
    rank = {unit: n for n, layer in enumerate(LAYERS) for unit in layer}
    upward = sorted(
        f"{module} imports {target}"
        for module, targets in _imports().items()
        for target in targets
        if _unit(target) != _unit(module)
        and rank[_unit(target)] <= rank[_unit(module)]
        # `monitor` itself only installs the old names' aliases: any module may sit below it
        and _unit(target) not in {"monitor", "monitor._moved"}
    )
    assert upward == []


def test_no_import_circle() -> None:
    graph = _imports()
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                circles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(MODULES):
        if module not in state:
            visit(module, [module])
    assert circles == []


def test_every_package_says_what_it_owns_and_may_import() -> None:
    for init in PACKAGE.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert "May import" in doc, (
            f"{init.relative_to(PACKAGE.parent)} does not say what it may import"
        )


def test_old_module_names_still_import() -> None:
    from monitor.consumer import AlertConsumer  # type: ignore[import-not-found]

    from monitor.delivery.consumer import AlertConsumer as moved

    assert AlertConsumer is moved
