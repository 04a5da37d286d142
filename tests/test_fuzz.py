"""Fuzzing (hypothesis): arbitrary and mutated feed bytes into parse_feed, arbitrary and
grammar-shaped rule text into the query parser and evaluator, arbitrary markup into the
HTML-to-text step. Only the project's own errors may come out."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.errors import ExtractError, FeedError, QuerySyntaxError
from monitor.extract import extract, html_to_text
from monitor.feeds import parse_feed
from monitor.model import Item
from monitor.rules.match import Document, evaluate
from monitor.rules.query import parse

from .conftest import FIXTURES

# CI runs the same 250 examples each time; FUZZ_EXAMPLES=N runs N new random ones.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=EXAMPLES or 250,
    deadline=None,
    derandomize=not EXAMPLES,
    suppress_health_check=[HealthCheck.too_slow],
)
SEEDS = [
    (FIXTURES / "realfeeds" / path).read_bytes()
    for path in (
        "feed-rs/feed-rs/fixture/rss2/rss_2.0_example_3.xml",
        "feed-rs/feed-rs/fixture/atom/atom_example_1.xml",
        "feed-rs/feed-rs/fixture/rss1/rss_1.0_iso8859.xml",
        "miniflux/internal/reader/parser/testdata/encoding_WINDOWS-1251.xml",
    )
]
NASTY = [b"<", b"&", b"\x00", b"\xff\xfe", b"\xc3", b"]]>", b"<![CDATA[", b"&#0;",
         b"&#xD800;", b'<!DOCTYPE x [<!ENTITY a "&a;&a;">]>', b"</rss>", b"<item>",
         b"encoding='koi8-r'"]  # fmt: skip


def parses_or_refuses(body: bytes) -> None:
    try:
        items = parse_feed(body, url="http://fuzz.example/feed.xml")
    except FeedError:
        return
    assert all(isinstance(item, Item) and (item.guid or item.url) for item in items)


@FUZZ
@given(st.binary(max_size=2048))
def test_any_bytes(body: bytes) -> None:
    parses_or_refuses(body)


@FUZZ
@given(
    st.sampled_from(SEEDS),
    st.lists(
        st.tuples(
            st.floats(0, 1),
            st.sampled_from(["insert", "delete", "flip", "truncate"]),
            st.sampled_from(NASTY) | st.binary(min_size=1, max_size=8),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_mutated_real_feeds(seed: bytes, edits: list[tuple[float, str, bytes]]) -> None:
    body = bytearray(seed)
    for where, edit, data in edits:
        at = int(where * len(body))
        if edit == "insert":
            body[at:at] = data
        elif edit == "delete":
            del body[at : at + len(data) * 16]
        elif edit == "flip" and at < len(body):
            body[at] ^= data[0] or 0xFF
        elif edit == "truncate":
            del body[at:]
    parses_or_refuses(bytes(body))


WORDS = ["treaty", "kim", "putin", "Zürich", "naïve", "ICBM", "a", "x1"]
TOKENS = [*WORDS, "AND", "OR", "NOT", "NEAR", "NEAR/3", "NEAR/0", "(", ")", '"', "title:", "text:",
          "source:", "lang:", "*", "treat*", "@leaders", "-", "NEAR/99999999999"]  # fmt: skip
DOC = Document(title="Kim meets Putin", text="Kim and Putin sign a treaty in Zürich. " * 3,
               source="Wire", lang="en")  # fmt: skip


def aliases(name: str, offset: int):
    if name != "leaders":
        raise QuerySyntaxError(f"unknown alias @{name}", offset)
    return (parse('"kim jong un"'), parse("putin"))


def parses_and_evaluates_or_refuses(query: str) -> None:
    try:
        node = parse(query, aliases)
    except QuerySyntaxError:
        return
    spans = evaluate(node, DOC)
    assert spans is None or isinstance(spans, list)


@FUZZ
@given(st.text(max_size=200))
def test_any_rule_text(query: str) -> None:
    parses_and_evaluates_or_refuses(query)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=25))
def test_grammar_shaped_rule_text(tokens: list[str]) -> None:
    parses_and_evaluates_or_refuses(" ".join(tokens))


MARKUP = "<>/=\"' &;#x0aëй\x00\n"


@FUZZ
@given(st.text(alphabet=st.sampled_from(list(MARKUP)), max_size=400) | st.text(max_size=400))
def test_any_markup_to_text(markup: str) -> None:
    assert isinstance(html_to_text(markup), str)
    try:
        article = extract(markup.encode("utf-8", "surrogatepass"), url="http://fuzz.example/a")
    except ExtractError:
        return
    assert article.text.strip()
