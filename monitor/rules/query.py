"""The rule query language (DESIGN §4.3): parsing into a small tree, and printing it back.

    query   := or
    or      := and ("OR" and)*
    and     := not (["AND"] not)*          adjacent terms mean AND
    not     := "NOT" not | near
    near    := primary ("NEAR" | "NEAR/n" primary)*     n words apart at most, either order
    primary := "(" or ")" | FIELD ":" primary | term
    term    := word | word* | "a phrase" | @alias

Precedence, tightest first: NEAR, NOT, AND, OR. Operators are upper-case; lower-case
"and"/"or"/"not"/"near" are ordinary words (`lint` asks whether they were meant). A proximity
operator spelt wrong (`NEAR/x`, `NEAR/`, `near/5`, `NEAR5`, `W/5`) is an error, never the
phrase it would otherwise be. Fields: title, text, source, lang.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from monitor.errors import QuerySyntaxError
from monitor.text import words

FIELDS = ("title", "text", "source", "lang")
DEFAULT_NEAR = 5
MAX_DEPTH = 40  # nesting of parentheses, NOTs, fields and NEAR chains


@dataclass(frozen=True, slots=True)
class Term:
    """A word, a phrase (several words in a row) or a trailing wildcard on the last word."""

    words: tuple[str, ...]
    prefix: bool = False  # the last word is a prefix: `sanction*`
    label: str = field(default="", compare=False)  # the term as written, for explanations

    def __str__(self) -> str:
        if len(self.words) == 1:
            return self.words[0] + ("*" if self.prefix else "")
        return '"' + " ".join(self.words) + ("*" if self.prefix else "") + '"'


@dataclass(frozen=True, slots=True)
class Alias:
    name: str
    terms: tuple[Term, ...]

    def __str__(self) -> str:
        return "@" + self.name


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    node: Node

    def __str__(self) -> str:
        return f"{self.name}:{_group(self.node, Term, Alias)}"


@dataclass(frozen=True, slots=True)
class Not:
    node: Node

    def __str__(self) -> str:
        return f"NOT {_group(self.node, Term, Alias, Field, Not)}"


@dataclass(frozen=True, slots=True)
class And:
    nodes: tuple[Node, ...]

    def __str__(self) -> str:
        return " AND ".join(_group(n, Term, Alias, Field, Not, Near) for n in self.nodes)


@dataclass(frozen=True, slots=True)
class Or:
    nodes: tuple[Node, ...]

    def __str__(self) -> str:
        return " OR ".join(_group(n, Term, Alias, Field, Not, Near, And) for n in self.nodes)


@dataclass(frozen=True, slots=True)
class Near:
    left: Node
    right: Node
    distance: int

    def __str__(self) -> str:
        left, right = (_group(n, Term, Alias, Field) for n in (self.left, self.right))
        return f"{left} NEAR/{self.distance} {right}"


Node = Term | Alias | Field | Not | And | Or | Near


def _group(node: Node, *bare: type) -> str:
    """The node as text, in parentheses unless it binds at least as tightly as `bare`."""
    return str(node) if isinstance(node, bare) else f"({node})"


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<lparen>\()|(?P<rparen>\))
    | (?P<phrase>"(?P<body>[^"]*)"(?P<pstar>\*)?)
    | (?P<near>NEAR(?:/(?P<n>\d+))?)(?=[\s()"]|$)
    | (?P<badnear>(?:NEAR/[^\s()"]*|(?i:near)/\d*|(?i:near)\d+|(?i:w|n|pre)/\d+)(?=[\s()"]|$))
    | (?P<op>AND|OR|NOT)(?=[\s()"]|$)
    | (?P<field>[A-Za-z]+):
    | (?P<alias>@[\w-]+)
    | (?P<word>[^\s()"]+)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str
    value: str
    offset: int
    extra: str = ""


def _lex(query: str) -> Iterator[_Tok]:
    pos = 0
    while True:
        while pos < len(query) and query[pos].isspace():
            pos += 1
        if pos == len(query):
            return
        m = _TOKEN.match(query, pos)
        if not m:
            if query[pos] == '"':
                raise QuerySyntaxError("unclosed quote", pos)
            raise QuerySyntaxError("unexpected character", pos)
        kind = next(k for k in _KINDS if m.group(k) is not None)
        start = m.start(kind)
        if kind == "phrase":
            yield _Tok("phrase", m.group("body"), start, "*" if m.group("pstar") else "")
        elif kind == "near":
            yield _Tok("near", m.group("n") or "", start)
        else:
            yield _Tok(kind, m.group(kind), start)
        pos = m.end()


_KINDS = ("lparen", "rparen", "phrase", "near", "badnear", "op", "field", "alias", "word")


AliasLookup = Callable[[str, int], tuple["Term", ...]]


class _Parser:
    def __init__(self, query: str, aliases: AliasLookup | None) -> None:
        self.query = query
        self.toks = list(_lex(query))
        self.i = 0
        self.depth = 0
        self.aliases = aliases

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def deeper(self, tok: _Tok) -> None:
        """Count one more level of nesting; queries are trees walked recursively."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"nested more than {MAX_DEPTH} levels deep", tok)

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def error(self, message: str, tok: _Tok | None = None) -> QuerySyntaxError:
        return QuerySyntaxError(message, tok.offset if tok else len(self.query))

    def parse(self) -> Node:
        if not self.toks:
            raise self.error("empty query")
        node = self.or_()
        tok = self.peek()
        if tok is not None:
            raise self.error(
                "unexpected ')'" if tok.kind == "rparen" else "expected an operator", tok
            )
        return node

    def or_(self) -> Node:
        nodes = [self.and_()]
        while (tok := self.peek()) and tok.kind == "op" and tok.value == "OR":
            self.take()
            nodes.append(self.and_())
        return nodes[0] if len(nodes) == 1 else Or(tuple(nodes))

    def and_(self) -> Node:
        nodes = [self.not_()]
        while (tok := self.peek()) and not (
            tok.kind == "rparen" or (tok.kind == "op" and tok.value == "OR")
        ):
            if tok.kind == "op" and tok.value == "AND":
                self.take()
            nodes.append(self.not_())
        return nodes[0] if len(nodes) == 1 else And(tuple(nodes))

    def not_(self) -> Node:
        tok = self.peek()
        if tok and tok.kind == "op" and tok.value == "NOT":
            self.take()
            self.deeper(tok)
            node = Not(self.not_())
            self.depth -= 1
            return node
        return self.near()

    def near(self) -> Node:
        node = self.primary()
        chain = 0
        while (tok := self.peek()) and tok.kind == "near":
            self.take()
            self.deeper(tok)  # a NEAR chain nests to the left
            chain += 1
            distance = int(tok.value) if tok.value else DEFAULT_NEAR
            if distance < 1:
                raise self.error("NEAR/n needs n of at least 1", tok)
            node = Near(node, self.primary(), distance)
        self.depth -= chain
        return node

    def primary(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise self.error("expected a term or '(' but the query ended")
        self.take()
        if tok.kind == "lparen":
            self.deeper(tok)
            node = self.or_()
            close = self.peek()
            if close is None or close.kind != "rparen":
                raise self.error("expected ')' to close the '('", tok)
            self.take()
            self.depth -= 1
            return node
        if tok.kind == "field":
            name = tok.value.lower()
            if name not in FIELDS:
                raise self.error(f"unknown field {tok.value!r} (fields: {', '.join(FIELDS)})", tok)
            self.deeper(tok)
            field_node = Field(name, self.primary())
            self.depth -= 1
            return field_node
        if tok.kind == "alias":
            if self.aliases is None:
                raise self.error(f"alias {tok.value} used but no aliases are defined", tok)
            return Alias(tok.value[1:].lower(), self.aliases(tok.value[1:].lower(), tok.offset))
        if tok.kind == "phrase":
            return term(tok.value + tok.extra, tok.offset, label=f'"{tok.value}"{tok.extra}')
        if tok.kind == "word":
            return term(tok.value, tok.offset)
        if tok.kind == "badnear":
            raise self.error(_near_hint(tok.value), tok)
        what = {"rparen": "')'", "near": "NEAR", "op": tok.value}[tok.kind]
        raise self.error(f"expected a term but found {what}", tok)


def _near_hint(written: str) -> str:
    """What a misspelt proximity operator should have been."""
    n = re.search(r"\d+$", written)
    if n and int(n[0]) >= 1:
        return f"{written!r} is not an operator: did you mean NEAR/{int(n[0])}?"
    return (
        f"{written!r} is not an operator: write NEAR/n, n a number of words "
        f"(NEAR/{DEFAULT_NEAR}), or NEAR alone (n = {DEFAULT_NEAR})"
    )


def term(text: str, offset: int = 0, label: str = "") -> Term:
    """A Term from words as written: `Kim Jong-un` is a phrase of three words."""
    prefix = text.endswith("*")
    body = text.rstrip("*")
    if "*" in body:
        raise QuerySyntaxError("a wildcard may only end a word", offset + body.index("*"))
    found = tuple(words(body))
    if not found:
        raise QuerySyntaxError(f"{text!r} has no letters or digits to match", offset)
    return Term(found, prefix, label or text)


def parse(query: str, aliases: AliasLookup | None = None) -> Node:
    """Parse a query. `aliases(name, offset)` returns an alias's terms or raises
    QuerySyntaxError for an unknown one."""
    return _Parser(query, aliases).parse()


_LOWER_OPERATOR = re.compile(r"(?i)^(and|or|not|near)$")  # `near/5` is an error: no word


def lint(query: str) -> list[tuple[int, str]]:
    """Likely mistakes in a query that parses: (0-based offset, message). A lower-case
    `and`/`or`/`not`/`near` between terms is a word to find (`huawei and ban` is three
    words), which is rarely what was meant."""
    try:
        toks = list(_lex(query))
    except QuerySyntaxError:
        return []  # the parser reports it
    found = []
    for i, tok in enumerate(toks[1:-1], 1):
        if tok.kind == "word" and _LOWER_OPERATOR.match(tok.value):
            if toks[i - 1].kind == "lparen" or toks[i + 1].kind == "rparen":
                continue  # `(not)`: at the edge of a group, a word by intent
            upper = tok.value.upper()
            found.append(
                (tok.offset, f"{tok.value!r} is searched as a word: did you mean {upper}?")
            )
    return found
