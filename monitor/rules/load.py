"""Loading rule files (`rules/*.yaml`, one rule or a list per file) and `rules/aliases.yaml`.

A bad file fails the whole load, loudly, with file, line and column: a rule set is never
half-loaded and no rule is silently skipped. `check_rules` goes on past the first problem
and reports every broken file and rule, and lint warnings (likely mistakes that parse).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
import yaml

from monitor.errors import QuerySyntaxError, RuleError
from monitor.rules.model import SEVERITIES, UPDATES, Rule, RuleSet
from monitor.rules.query import And, Field, Node, Not, Or, Term, lint, parse, term
from monitor.text import words
from monitor.units import parse_duration

log = structlog.get_logger(__name__)

ALIASES_FILE = "aliases.yaml"
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_KEYS = {
    "id",
    "name",
    "severity",
    "query",
    "languages",
    "min_score",
    "enabled",
    "examples",
    "sources",
    "backfill",
    "tags",
    "breaking",
    "updates",
}


@dataclass(frozen=True, slots=True)
class RuleCheck:
    """Everything wrong with a rules directory, not just the first thing."""

    rules: tuple[Rule, ...]  # those that loaded
    aliases: dict[str, tuple[Term, ...]]
    errors: tuple[RuleError, ...]
    warnings: tuple[RuleError, ...]


def check_rules(directory: Path) -> RuleCheck:
    """Load every rule of `directory` that can be loaded; collect the errors of the rest."""
    if not directory.is_dir():
        return RuleCheck((), {}, (RuleError(str(directory), "no such rules directory"),), ())
    errors: list[RuleError] = []
    try:
        aliases: dict[str, tuple[Term, ...]] | None = _load_aliases(directory / ALIASES_FILE)
    except RuleError as exc:
        errors.append(exc)
        aliases = None  # broken: do not also call every @name in the rules unknown
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    files = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml"))
    for path in files:
        if path.name == ALIASES_FILE:
            continue
        for loaded in _load_file(path, aliases):
            if isinstance(loaded, RuleError):
                errors.append(loaded)
            elif loaded.id in seen:
                errors.append(
                    RuleError(
                        str(path), f"rule id {loaded.id!r} is also defined in {seen[loaded.id]}"
                    )
                )
            else:
                seen[loaded.id] = str(path)
                rules.append(loaded)
    warnings = tuple(w for rule in rules for w in rule.warnings)
    return RuleCheck(tuple(rules), aliases or {}, tuple(errors), warnings)


def load_rules(directory: Path) -> RuleSet:
    """Every rule in `directory`; raises the first RuleError if anything is broken."""
    checked = check_rules(directory)
    if checked.errors:
        raise checked.errors[0]
    for warning in checked.warnings:
        log.warning("rule_lint", where=str(warning).rsplit(": ", 1)[0], problem=warning.message)
    return RuleSet(checked.rules, checked.aliases)


def _compose(path: Path) -> yaml.Node | None:
    try:
        return yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except UnicodeDecodeError as exc:
        raise RuleError(str(path), f"not UTF-8 text ({exc.reason})") from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        raise RuleError(str(path), f"invalid YAML: {exc.problem or exc}", line, column) from exc
    except yaml.YAMLError as exc:
        raise RuleError(str(path), f"invalid YAML: {exc}") from exc
    except RecursionError as exc:
        raise RuleError(str(path), "invalid YAML: nested too deeply") from exc


def _fail(path: Path, node: yaml.Node, message: str) -> RuleError:
    return RuleError(str(path), message, node.start_mark.line + 1, node.start_mark.column + 1)


def _value(node: yaml.Node) -> Any:
    """The plain Python value of an already composed node."""
    return yaml.constructor.SafeConstructor().construct_object(node, deep=True)


def _strings(path: Path, node: yaml.Node, what: str) -> tuple[str, ...]:
    if not isinstance(node, yaml.SequenceNode) or not all(
        isinstance(n, yaml.ScalarNode) for n in node.value
    ):
        raise _fail(path, node, f"{what} must be a list of strings")
    return tuple(str(n.value) for n in node.value)


def _load_aliases(path: Path) -> dict[str, tuple[Term, ...]]:
    if not path.exists():
        return {}
    root = _compose(path)
    if root is None:
        return {}
    if not isinstance(root, yaml.MappingNode):
        raise _fail(path, root, "aliases must be a mapping of name: [terms]")
    aliases: dict[str, tuple[Term, ...]] = {}
    for key, value in root.value:
        if not isinstance(key, yaml.ScalarNode):
            raise _fail(path, key, "alias names must be plain names")
        name = str(key.value).lower()
        if name in aliases:
            raise _fail(path, key, f"alias {name!r} is defined twice (names ignore case)")
        if not re.fullmatch(r"[\w-]+", name):
            raise _fail(path, key, f"bad alias name {key.value!r}")
        entries = _strings(path, value, f"alias {name}")
        if not entries:
            raise _fail(path, value, f"alias {name} has no terms")
        terms = []
        for entry, node in zip(entries, value.value, strict=True):
            try:
                terms.append(term(entry, label=entry))
            except QuerySyntaxError as exc:
                raise _fail(path, node, f"alias {name}: {exc.message}") from exc
        aliases[name] = tuple(terms)
    return aliases


def _load_file(path: Path, aliases: dict[str, tuple[Term, ...]] | None) -> list[Rule | RuleError]:
    """The file's rules, or for each one that is broken its error."""
    try:
        root = _compose(path)
    except RuleError as exc:
        return [exc]
    if root is None:
        return [RuleError(str(path), "empty rule file")]
    nodes = root.value if isinstance(root, yaml.SequenceNode) else [root]
    loaded: list[Rule | RuleError] = []
    for node in nodes:
        try:
            loaded.append(_rule(path, node, aliases))
        except RuleError as exc:
            loaded.append(exc)
    return loaded


def _rule(path: Path, node: yaml.Node, aliases: dict[str, tuple[Term, ...]] | None) -> Rule:
    if not isinstance(node, yaml.MappingNode):
        raise _fail(path, node, "a rule must be a mapping with id, name and query")
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode):
            raise _fail(path, key, "keys must be plain names")
    fields: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key, value in node.value:
        if str(key.value) in fields:
            raise _fail(path, key, f"{key.value!r} is given twice")
        fields[str(key.value)] = (key, value)
    for name, (key, _) in fields.items():
        if name not in _KEYS:
            raise _fail(
                path,
                key,
                f"unknown key {name!r}{_meant(name, _KEYS)} "
                f"(expected one of {', '.join(sorted(_KEYS))})",
            )
    for required in ("id", "name", "query"):
        if required not in fields:
            raise _fail(path, node, f"rule is missing {required!r}")

    def scalar(name: str, kind: type, default: Any) -> Any:
        if name not in fields:
            return default
        value_node = fields[name][1]
        if not isinstance(value_node, yaml.ScalarNode):
            value = None
        elif kind is str:
            value = value_node.value  # as written: `id: off` is the string "off"
        else:
            value = _value(value_node)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise _fail(path, value_node, f"{name} must be a {kind.__name__}")
        return value

    if not scalar("name", str, "").strip():
        raise _fail(path, fields["name"][1], "name must not be empty")
    rule_id = scalar("id", str, "")
    if not _ID.match(rule_id):
        raise _fail(path, fields["id"][1], f"bad rule id {rule_id!r}: use a-z, 0-9, '-' and '_'")
    severity = scalar("severity", str, "medium")
    if severity not in SEVERITIES:
        raise _fail(path, fields["severity"][1], f"severity must be one of {', '.join(SEVERITIES)}")
    min_score = scalar("min_score", int, 1)
    if min_score < 1:
        raise _fail(path, fields["min_score"][1], "min_score must be at least 1")
    query = scalar("query", str, "")  # a string: so its node is a scalar
    query_node = fields["query"][1]
    assert isinstance(query_node, yaml.ScalarNode)
    node_tree = _parse_query(path, query_node, query, aliases)
    warnings = _lint(path, query_node, query)
    languages = _strings(path, fields["languages"][1], "languages") if "languages" in fields else ()
    match, no_match = _examples(path, fields.get("examples"))
    include, exclude = _sources(path, fields.get("sources"))
    backfill = None
    if "backfill" in fields:
        try:
            backfill = parse_duration(scalar("backfill", str, ""))
        except ValueError as exc:
            raise _fail(path, fields["backfill"][1], f"backfill: {exc}") from exc
    tags = _strings(path, fields["tags"][1], "tags") if "tags" in fields else ()
    updates = scalar("updates", str, "always")
    if updates not in UPDATES:
        raise _fail(path, fields["updates"][1], f"updates must be one of {', '.join(UPDATES)}")
    return Rule(
        id=rule_id,
        name=scalar("name", str, ""),
        query=query,
        node=node_tree,
        severity=severity,
        languages=tuple(lang.lower() for lang in languages),
        min_score=min_score,
        enabled=scalar("enabled", bool, True),
        examples_match=match,
        examples_no_match=no_match,
        sources_include=include,
        sources_exclude=exclude,
        backfill=backfill,
        tags=tuple(dict.fromkeys(tags)),
        breaking=scalar("breaking", bool, False),
        updates=updates,
        path=str(path),
        warnings=warnings,
    )


def _parse_query(
    path: Path, node: yaml.ScalarNode, query: str, aliases: dict[str, tuple[Term, ...]] | None
) -> Node:
    def lookup(name: str, offset: int) -> tuple[Term, ...]:
        if aliases is None:  # the alias file is broken (and reported): check the rest
            return (term(name),)
        if name not in aliases:
            known = ", ".join(sorted(aliases)) or "none defined"
            raise QuerySyntaxError(f"unknown alias @{name} (known: {known})", offset)
        return aliases[name]

    try:
        tree = parse(query, lookup)
    except QuerySyntaxError as exc:
        line, column = _position(node, query, exc.offset)
        raise RuleError(str(path), f"query: {exc.message}", line, column) from exc
    if not _positive(tree):
        line, column = _position(node, query, 0)
        raise RuleError(
            str(path),
            "query: needs a term outside NOT (a match is scored by its terms)",
            line,
            column,
        )
    return tree


def _lint(path: Path, node: yaml.ScalarNode, query: str) -> tuple[RuleError, ...]:
    """The query's lint warnings (`query.lint`), placed in the file."""
    return tuple(
        RuleError(str(path), f"query: {message}", *_position(node, query, offset))
        for offset, message in lint(query)
    )


def ad_hoc_rule(query: str, aliases: dict[str, tuple[Term, ...]], rule_id: str = "query") -> Rule:
    """A rule made of a query typed by hand (the desk's tester and search): the rule
    language with the rules' aliases. A bad query is a RuleError naming the column; the
    rule's `warnings` are the hints a rule file's query gets (`huawei and ban`: "did you
    mean AND?")."""
    mark = yaml.Mark("query", 0, 0, 0, query, 0)
    node = yaml.ScalarNode("tag:yaml.org,2002:str", query, start_mark=mark, end_mark=mark)
    path = Path("query")
    tree = _parse_query(path, node, query, aliases)
    return Rule(id=rule_id, name=query, query=query, node=tree, warnings=_lint(path, node, query))


def _positive(node: Node) -> bool:
    """Whether a match of the node can carry a term that hit."""
    match node:
        case Not():
            return False
        case And() | Or():
            return any(_positive(child) for child in node.nodes)
        case Field():
            return _positive(node.node)
    return True


def _position(node: yaml.ScalarNode, query: str, offset: int) -> tuple[int, int]:
    """File line and column (1-based) of character `offset` of a scalar's value."""
    mark = node.start_mark
    before = query[:offset]
    if node.style in ("|", ">"):  # block scalar: the text starts on the next line
        lines = (mark.buffer or "").split("\n")
        first = lines[mark.line + 1] if mark.line + 1 < len(lines) else ""
        indent = len(first) - len(first.lstrip())
        return mark.line + 2 + before.count("\n"), indent + len(before.rsplit("\n", 1)[-1]) + 1
    quote = 1 if node.style in ("'", '"') else 0
    return mark.line + 1, mark.column + 1 + quote + offset


def _lists(
    path: Path, entry: tuple[yaml.Node, yaml.Node] | None, what: str, names: tuple[str, str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A mapping of (at most) two string lists, e.g. examples: {match: [...], no_match: [...]}."""
    found: dict[str, tuple[str, ...]] = dict.fromkeys(names, ())
    if entry is None:
        return (), ()
    _, node = entry
    if not isinstance(node, yaml.MappingNode):
        raise _fail(path, node, f"{what} must be a mapping with {' and/or '.join(names)} lists")
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.value not in found:
            name = key.value if isinstance(key, yaml.ScalarNode) else "(not a plain name)"
            raise _fail(
                path,
                key,
                f"unknown {what} key {name!r}{_meant(name, names)} (expected {', '.join(names)})",
            )
        found[key.value] = _strings(path, value, f"{what}.{key.value}")
    return found[names[0]], found[names[1]]


def _meant(name: str, known: Iterable[str]) -> str:
    """ ", did you mean 'x'?" for the known key closest to a misspelt one, if any."""
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f", did you mean {close[0]!r}?" if close else ""


def _examples(path: Path, entry: tuple[yaml.Node, yaml.Node] | None) -> tuple[tuple[str, ...], ...]:
    return _lists(path, entry, "examples", ("match", "no_match"))


def _sources(path: Path, entry: tuple[yaml.Node, yaml.Node] | None) -> tuple[tuple[str, ...], ...]:
    """Source names (compared as folded words) or domains (lower-cased)."""
    lists = _lists(path, entry, "sources", ("include", "exclude"))
    return tuple(tuple(s.lower() if "." in s else " ".join(words(s)) for s in lst) for lst in lists)
