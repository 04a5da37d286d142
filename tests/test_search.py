"""Searching everything retained through the search index: the same matches, explanations
and stories as reading every retained item, on one server and on a cluster; blocks dropped
with the items they index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import Settings
from monitor.ingest.fetch import LocalFetcher
from monitor.pipeline import runtime
from monitor.pipeline.replay import read_feeds
from monitor.pipeline.search import scan, search
from monitor.retained.index import SKIPPED
from monitor.retained.items import RetainedItems
from monitor.rules import Rule, ad_hoc_rule, load_rules
from monitor.store.connection import connect
from monitor.store.keys import Keys
from monitor.text import words

from .conftest import FIXTURES, ROOT, RULES, SAMPLE_FEEDS

FEEDS = [SAMPLE_FEEDS, *(FIXTURES / "feeds" / n for n in ("extra.xml", "fragments.xml"))]
FEEDS += [FIXTURES / "feeds" / n for n in ("tracking.xml", "jsonfeed-1.1.json")]
QUERIES = [
    "treaty",
    "Putin AND Kim",
    '"strategic partnership"',
    "sanction* OR missile*",
    "korea NOT treaty",
    "title:(kim OR putin)",
    "text:pyongyang",
    "source:news",
    "lang:en",
    "lang:e* AND korea",
    "kim NEAR/3 putin",
    "@dprk AND @russia",
    "the",
    "the AND treaty",
    "th* AND korea",
    "said OR treaty",
    "(missile* OR NOT putin) AND korea",
    "nothingatall",
    "NOT nothingatall AND (a OR kim)",
    '"kim jong*"',
    "title:the",
]


def process(client: redis.Redis, redis_url: str) -> None:
    pipeline = runtime.pipeline(
        client, Settings(redis_url=redis_url), load_rules(RULES), LocalFetcher(ROOT)
    )
    for item in read_feeds(FEEDS):
        pipeline.process(item)


@pytest.fixture
def retained(client: redis.Redis, redis_url: str) -> RetainedItems:
    """The seed replay and a few fixture feeds, retained again in blocks of three items
    (under another prefix), so that a search spans blocks."""
    process(client, redis_url)
    live = RetainedItems(client, Keys(), retention=3600, maxlen=1000)
    small = RetainedItems(client, Keys("small:"), retention=3600, maxlen=1000, block=3)
    for kept in live.read(0):
        small.append(kept.item, kept.article, kept.url, kept.placement)
    return small


def same(rule: Rule, retained: RetainedItems, **bounds: float | str) -> None:
    """The index's search agrees with reading every retained item."""
    found = search(rule, retained, shown=1000, **bounds)  # type: ignore[arg-type]
    expected = scan(rule, retained, **bounds)  # type: ignore[arg-type]
    assert found.complete
    assert [(k.entry_id, m) for k, m in found.matches] == [(k.entry_id, m) for k, m in expected]
    assert found.count == len(expected)
    stories: dict[str, list[str]] = {}
    for kept, _ in expected:
        stories.setdefault(kept.placement.story_id, []).append(kept.placement.outcome)
    assert found.stories == stories


def test_search_finds_what_reading_everything_finds(retained: RetainedItems) -> None:
    assert retained.count() >= 12
    rules = load_rules(RULES)
    aliases = rules.aliases
    for query in QUERIES:
        same(ad_hoc_rule(query, aliases), retained)
    for rule in rules.rules:  # the rules as written, min_score and languages included
        same(rule, retained)
    assert search(rules.get("dprk-russia-treaty"), retained).count >= 4  # the seed story


def test_search_over_what_the_pipeline_indexed(client: redis.Redis, redis_url: str) -> None:
    """The pipeline indexes the words its analysis read: the same as reading the items."""
    process(client, redis_url)
    live = RetainedItems(client, Keys(), retention=3600, maxlen=1000)
    for query in QUERIES:
        same(ad_hoc_rule(query, load_rules(RULES).aliases), live)


def test_search_within_bounds_and_a_story(retained: RetainedItems) -> None:
    rule = ad_hoc_rule("korea OR treaty OR missile*", load_rules(RULES).aliases)
    every = scan(rule, retained)
    assert len(every) >= 4
    story = every[-1][0].placement.story_id
    middle = every[len(every) // 2][0].processed_at
    same(rule, retained, story=story)
    same(rule, retained, since=middle)
    same(rule, retained, until=middle)
    same(rule, retained, since=time.time() + 60)
    assert search(rule, retained, since=time.time() + 60).searched == 0


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_generated_queries_agree(retained: RetainedItems, data: st.DataObject) -> None:
    vocabulary = sorted({w for k in retained.read(0) for w in words(k.article.title)})
    word = st.sampled_from([*vocabulary[:60], "the", "said", "zzz", "north korea"])
    term = st.one_of(
        word.map(lambda w: f'"{w}"' if " " in w else w),
        word.map(lambda w: w[:3] + "*"),
    )

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, inner).map(lambda p: f"({p[0]} AND {p[1]})"),
            st.tuples(inner, inner).map(lambda p: f"({p[0]} OR {p[1]})"),
            st.tuples(inner, inner).map(lambda p: f"({p[0]} AND NOT {p[1]})"),
            st.tuples(inner, inner).map(lambda p: f"({p[0]} NEAR/4 {p[1]})"),
            inner.map(lambda q: f"title:({q})"),
        )

    query = data.draw(st.recursive(term, extend, max_leaves=6))
    same(ad_hoc_rule(query, {}), retained)


def test_only_what_is_shown_is_read_when_the_postings_decide(retained: RetainedItems) -> None:
    rule = ad_hoc_rule("korea OR missile* OR NOT nothingatall", {})
    found = search(rule, retained, shown=2)
    assert found.complete and found.count == len(scan(rule, retained)) > 2
    assert len(found.matches) == 2 and found.read == 2
    phrase = ad_hoc_rule('"north korea"', {})
    partly = search(phrase, retained, shown=1, verify=2)  # a phrase needs its texts read
    assert not partly.complete and partly.unchecked == partly.candidates - 2


def test_blocks_leave_with_their_items(client: redis.Redis) -> None:
    retained = RetainedItems(client, Keys(), retention=3600, maxlen=1000, block=4)
    from monitor.model import Article, Item, Outcome, Placement

    def keep(n: int) -> str:
        item = Item(
            guid=f"g{n}", url=f"https://x.example/{n}", title=f"Title {n}", source="X", feed="f"
        )
        article = Article(text=f"alpha word{n} beta", title=item.title, language="en")
        placement = Placement(outcome=Outcome.NEW_STORY, story_id=f"{n:016x}")
        return retained.append(item, article, item.url, placement)

    entries = [keep(n) for n in range(12)]
    rule = ad_hoc_rule("alpha", {})
    assert search(rule, retained).count == 12
    client.xdel(Keys().retained, *entries[:9])  # as trimming would
    assert search(rule, retained).count == 3
    assert retained.index.trim() == 2  # blocks 0 and 1 held documents 1 to 7 only
    assert not client.keys("monitor:search:0:*") and not client.keys("monitor:words:1:*")
    assert client.exists("monitor:search:2:xalpha")
    same(rule, retained)


@pytest.mark.slow
def test_search_on_a_cluster(cluster_url: str, redis_url: str) -> None:
    client = connect(cluster_url)
    try:
        process(client, cluster_url)
        retained = RetainedItems(client, Keys(), retention=3600, maxlen=1000)
        rules = load_rules(RULES)
        for query in QUERIES[:12]:
            same(ad_hoc_rule(query, rules.aliases), retained)
    finally:
        client.close()


def run_search(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env["MONITOR_REDIS_URL"] = redis_url
    command = [sys.executable, "-m", "monitor", "search", "--rules", str(RULES), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)


def lines(text: str) -> Iterator[dict]:
    return (json.loads(line) for line in text.splitlines())


def test_search_on_the_command_line(client: redis.Redis, redis_url: str) -> None:
    process(client, redis_url)
    retained = RetainedItems(client, Keys(), retention=3600, maxlen=1000)
    rule = ad_hoc_rule("@dprk AND treaty", load_rules(RULES).aliases)
    expected = scan(rule, retained)
    done = run_search(redis_url, "@dprk AND treaty", "--json")
    assert done.returncode == 0, done.stderr
    found = list(lines(done.stdout))
    assert [f["item"] for f in found] == [k.item.id for k, _ in expected]
    first = found[0]
    assert set(first) == {"item", "story", "title", "source", "url", "time", "matches"}
    assert first["matches"] == [
        {"field": h.field, "term": h.term, "snippet": h.snippet} for h in expected[0][1].hits
    ]
    story = run_search(redis_url, "treaty", "--json", "--story", first["story"], "--limit", "2")
    assert {f["story"] for f in lines(story.stdout)} == {first["story"]}
    assert len(story.stdout.splitlines()) <= 2
    text = run_search(redis_url, "treaty", "--source", found[-1]["source"])
    assert text.returncode == 0 and found[-1]["source"] in text.stdout and "«" in text.stdout
    bad = run_search(redis_url, "kim AND (putin")
    assert bad.returncode == 2
    assert "query:1:9: query: expected ')' to close the '('" in bad.stderr
    none = run_search(redis_url, "nothingatall", "--since", "1h")
    assert none.returncode == 1 and "no match" in none.stdout
    assert run_search(redis_url, "treaty", "--since", "soon").returncode == 2


def test_search_says_that_items_retained_before_the_index_are_not_searched(
    client: redis.Redis, redis_url: str
) -> None:
    client.xadd(Keys().retained, {"item": "{}", "text": "a treaty retained by an older version"})
    process(client, redis_url)
    done = run_search(redis_url, "treaty")
    assert done.returncode == 0 and "treaty" in done.stdout
    assert "retained before the search index existed are not searched" in done.stderr
    as_json = run_search(redis_url, "treaty", "--json")
    assert all(json.loads(line)["item"] for line in as_json.stdout.splitlines())
    assert "not searched" in as_json.stderr


def test_skipped_words_are_few_and_common() -> None:
    assert len(SKIPPED) < 120 and "korea" not in SKIPPED


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=80))
def test_ascii_tokens_are_the_folded_tokens(text: str) -> None:
    from monitor.text import _WORD, Token, fold, tokens

    folded = [Token(fold(m.group()), m.start(), m.end()) for m in _WORD.finditer(text)]
    assert tokens(text) == folded
