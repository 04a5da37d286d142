"""Fuzzing (hypothesis): arbitrary, feed-shaped and mutated real feed bytes into parse_feed,
arbitrary and grammar-shaped rule text into the query parser and evaluator, arbitrary markup
into the HTML-to-text and extraction steps. Only the project's own errors may come out."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from monitor.errors import ExtractError, FeedError, QuerySyntaxError
from monitor.extract import extract, html_to_text
from monitor.ingest.feeds import parse_feed
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

# Entity tricks, small enough to keep the examples fast: a nested and a large internal
# entity, an external one that must never be read.
ENTITIES = (
    b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY big "' + b"x" * 4000 + b'">'
    b'<!ENTITY two "&big;&big;"><!ENTITY secret SYSTEM "file:///etc/passwd">]>'
    b'<rss version="2.0"><channel><title>e</title><item><title>&two; &secret;</title>'
    b"<link>http://fuzz.example/1</link><description>&big;&secret;</description></item>"
    b"</channel></rss>"
)
SEEDS = [
    ENTITIES,
    *(
        (FIXTURES / "realfeeds" / path).read_bytes()
        for path in (
            "feed-rs/feed-rs/fixture/rss2/rss_2.0_example_3.xml",
            "feed-rs/feed-rs/fixture/atom/atom_example_1.xml",
            "feed-rs/feed-rs/fixture/rss1/rss_1.0_iso8859.xml",
            "miniflux/internal/reader/parser/testdata/encoding_WINDOWS-1251.xml",
            "miniflux/internal/reader/xml/testdata/koi8r.xml",
        )
    ),
]
NASTY = [
    b"<",
    b"&",
    b"\x00",
    b"]]>",
    b"<![CDATA[",
    b"&#0;",
    b"&#xD800;",
    b"&#x110000;",
    b"&unknown;",
    b"</rss>",
    b"<item>",
    b"</channel>",
    b"<entry>",
    b"<link>",
    # invalid UTF-8: lone lead and continuation bytes, overlong, surrogate, beyond U+10FFFF
    b"\xc3",
    b"\x80",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xff",
    # byte-order marks and encoding declarations that disagree with the bytes
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"\xfe\xff\x00<",
    b"encoding='koi8-r'",
    b"encoding='utf-16'",
    b"encoding='no-such-charset'",
    # entity declarations: recursive, exponential, external, huge
    b'<!DOCTYPE x [<!ENTITY a "&a;&a;">]>',
    b'<!DOCTYPE rss [<!ENTITY l0 "lol"><!ENTITY l1 "&l0;&l0;&l0;&l0;&l0;&l0;&l0;&l0;">]>',
    b'<!DOCTYPE rss [<!ENTITY e SYSTEM "file:///etc/passwd">]>',
    b'<!DOCTYPE rss [<!ENTITY h "' + b"h" * 20_000 + b'">]>',
    b"&big;" * 20,
    b"&two;",
    b"&secret;",
    b"&e;",
    b"&h;",
]
# Feed-shaped documents: a well-formed skeleton (RSS or Atom) with entries whose fields hold
# fuzzed values, so that most examples get as far as the entries.
PROLOGS = [
    b"",
    b"\xef\xbb\xbf",
    b'<?xml version="1.0" encoding="utf-8"?>',
    b"<?xml version='1.0' encoding='iso-8859-1'?>",
    b"<?xml version='1.0' encoding='koi8-r'?>",
]
RSS = b'<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
SKELETONS = [  # start, end, entry element, its fields
    (
        RSS + b"<channel><title>f</title>",
        b"</channel></rss>",
        b"item",
        [
            b"<title>%s</title>",
            b"<link>%s</link>",
            b"<guid>%s</guid>",
            b"<pubDate>%s</pubDate>",
            b"<description>%s</description>",
            b"<content:encoded>%s</content:encoded>",
        ],
    ),
    (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>f</title>',
        b"</feed>",
        b"entry",
        [
            b"<title>%s</title>",
            b'<link href="%s"/>',
            b"<id>%s</id>",
            b"<updated>%s</updated>",
            b"<summary>%s</summary>",
            b'<content type="html">%s</content>',
        ],
    ),
]
VALUES = [
    b"text",
    b" ",
    b"caf\xc3\xa9",
    b"caf\xe9",
    b"\xd0\x9a\xd0\xb8\xd0\xbc",
    b"http://fuzz.example/a",
    b"/relative?utm_source=x#f",
    b"javascript:alert(1)",
    b"//other.example/b",
    b"urn:x:1",
    b"Wed, 19 Jun 2024 10:00:00 GMT",
    b"2024-06-19T10:00:00Z",
    b"99 Foo 0",
    b"&lt;p&gt;",
    b"&amp;",
    b"&#233;",
    b"<b>bold</b>",
    b"<![CDATA[<p>x</p>]]>",
    *NASTY,
]


@st.composite
def feed_shaped(draw) -> bytes:
    start, end, tag, fields = draw(st.sampled_from(SKELETONS))
    value = st.lists(st.sampled_from(VALUES), max_size=4).map(b"".join)
    field = st.builds(lambda template, text: template % text, st.sampled_from(fields), value)
    entry = st.lists(field, max_size=5).map(lambda fs: b"<%s>%s</%s>" % (tag, b"".join(fs), tag))
    entries = draw(st.lists(entry, max_size=4))
    return draw(st.sampled_from(PROLOGS)) + start + b"".join(entries) + end


def parses_or_refuses(body: bytes) -> None:
    try:
        items = parse_feed(body, url="http://fuzz.example/feed.xml")
    except FeedError:
        return
    for item in items:
        assert isinstance(item, Item) and (item.guid or item.url)
        assert "root:" not in item.title + item.summary + item.content  # /etc/passwd unread


@FUZZ
@given(st.binary(max_size=2048))
def test_any_bytes(body: bytes) -> None:
    parses_or_refuses(body)


@FUZZ
@given(feed_shaped())
def test_feed_shaped_bytes(body: bytes) -> None:
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


WORDS = ["treaty", "kim", "putin", "Zürich", "naïve", "ICBM", "a", "x1", "Kim-Jong"]
TOKENS = [
    *WORDS,
    "AND",
    "OR",
    "NOT",
    "NEAR",
    "NEAR/3",
    "NEAR/0",
    "(",
    ")",
    '"',
    "title:",
    "text:",
    "source:",
    "lang:",
    "url:",
    "*",
    "treat*",
    "@leaders",
    "@nobody",
    "-",
    "NEAR/99999999999",
    "and",
    "or",
    "near",
]
DOC = Document(
    title="Kim meets Putin",
    text="Kim and Putin sign a treaty in Zürich. " * 3,
    source="Wire",
    lang="en",
)


def aliases(name: str, offset: int):
    if name != "leaders":
        raise QuerySyntaxError(f"unknown alias @{name}", offset)
    return (parse('"kim jong un"'), parse("putin"))


def parses_and_evaluates_or_refuses(query: str):
    """The parsed query (evaluated without error), or None when it was refused."""
    try:
        node = parse(query, aliases)
    except QuerySyntaxError as exc:
        assert 0 <= exc.offset <= len(query)  # points into the query
        return None
    spans = evaluate(node, DOC)
    assert spans is None or isinstance(spans, list)
    return node


@FUZZ
@given(st.text(max_size=200))
@example("(" * 5000 + "kim" + ")" * 5000)  # deeper than any stack
@example("NOT " * 5000 + "kim")
@example(" NEAR ".join(["kim"] * 5000))
def test_any_rule_text(query: str) -> None:
    parses_and_evaluates_or_refuses(query)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=25))
def test_grammar_shaped_rule_text(tokens: list[str]) -> None:
    node = parses_and_evaluates_or_refuses(" ".join(tokens))
    if node is not None:  # a parsed query prints back to itself
        assert parse(str(node), aliases) == node


MARKUP = "<>/=\"' &;#x0aëй\x00\n"


@FUZZ
@given(
    st.text(alphabet=st.sampled_from(list(MARKUP)), max_size=400)
    | st.lists(
        st.sampled_from(
            [
                "<p>",
                "</p>",
                "<br>",
                "<script>",
                "</script>",
                "<li>",
                "&amp;",
                "&#0;",
                "<!--",
                "-->",
                "<![CDATA[",
                "text",
                " ",
                "\n",
            ]
        ),
        max_size=60,
    ).map("".join)
    | st.text(max_size=400)
)
def test_any_markup_to_text(markup: str) -> None:
    text = html_to_text(markup)
    assert all(line and line == line.strip() for line in text.split("\n") if text)  # one per block
    try:
        article = extract(markup.encode("utf-8", "surrogatepass"), url="http://fuzz.example/a")
    except ExtractError:
        return
    assert article.text.strip()
