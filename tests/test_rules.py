"""The rule language v1: parsing, matching with explanations, rule files and their errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.errors import QuerySyntaxError, RuleError
from monitor.rules import Document, ad_hoc_rule, load_rules
from monitor.rules.match import evaluate, explain, score
from monitor.rules.query import parse, term

from .conftest import RULES

ALIASES = {
    "dprk": (term("North Korea"), term("DPRK"), term("Kim Jong Un")),
    "russia": (term("Russia"), term("Putin")),
}


def lookup(name: str, offset: int):
    if name not in ALIASES:
        raise QuerySyntaxError(f"unknown alias @{name}", offset)
    return ALIASES[name]


def matches(query: str, text: str = "", title: str = "", lang: str = "") -> bool:
    return evaluate(parse(query, lookup), Document(title=title, text=text, lang=lang)) is not None


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ("treaty", "They signed a treaty.", True),
        ("treaty", "They signed treaties.", False),  # whole words only
        ("TREATY", "a Treaty", True),  # case-insensitive
        ("pyongyang", "PYŌNGYANG", True),  # diacritic-insensitive
        ('"strategic partnership"', "a comprehensive strategic partnership", True),
        ('"strategic partnership"', "a strategic and lasting partnership", False),
        ("kim jong-un", "KIM JONG UN arrived", True),  # hyphen splits words
        ('"Kim Jong-un"', "Kim Jong Un arrived", True),
        ("DPRK-Russia", "DPRK Russia ties", True),
        ("sanction*", "new sanctions were imposed", True),
        ("sanction*", "a sanction", True),
        ("sanction*", "unsanctioned", False),  # wildcard only at the end of the word
        ("putin kim", "Putin met Kim", True),  # adjacency means AND
        ("putin kim", "Putin met Xi", False),
        ("putin AND kim", "Kim met Putin", True),
        ("putin OR xi", "Xi spoke", True),
        ("putin NOT xi", "Putin met Xi", False),
        ("putin NOT xi", "Putin met Kim", True),
        ("NOT xi", "Putin met Kim", True),  # NOT at the top level
        ("putin AND (xi OR kim)", "Putin and Kim", True),
        ("putin AND (xi OR kim)", "Putin alone", False),
        ("(a OR b) AND NOT (c OR d)", "a then d", False),
        ("(a OR b) AND NOT (c OR d)", "b only", True),
        ("a OR b AND c", "a", True),  # AND binds tighter than OR
        ("a OR b AND c", "b", False),
        ("@dprk AND @russia", "North Korea and Russia", True),
        ("@dprk AND @russia", "Kim Jong-un met Putin", True),
        ("@dprk AND @russia", "South Korea and Russia", False),
        ("title:putin", "Putin", False),
        ("putin", "", False),  # empty text
        ("treaty and pact", "treaty and pact", True),  # lower-case and/or/not are words
        ("lang:en", "text", False),
        ("a NEAR/2 b", "a x y b", True),
        ("a NEAR/2 b", "a x y z b", False),
        ("a NEAR/2 b", "b x a", True),  # either order
        ("a NEAR b", "a 1 2 3 4 5 b", True),  # NEAR alone: at most 5 words apart
        ("a NEAR b", "a 1 2 3 4 5 6 b", False),
        ("münchen", "MUNCHEN and Zürich", True),  # diacritics either way
        ("zurich", "Zürich", True),
        ('"Jöng-un"', "Kim Jong Un", True),
    ],
)
def test_query_table(query: str, text: str, expected: bool) -> None:
    assert matches(query, text) is expected


def test_fields_and_language() -> None:
    assert matches("title:putin", text="nothing", title="Putin in Pyongyang")
    assert not matches("text:putin", text="nothing", title="Putin in Pyongyang")
    assert matches("lang:en AND putin", text="Putin", lang="en")
    assert not matches("lang:de AND putin", text="Putin", lang="en")


def test_near_does_not_cross_fields() -> None:
    assert not matches("putin NEAR/3 treaty", title="Putin visits", text="treaty signed")


@pytest.mark.parametrize(
    ("query", "message", "offset"),
    [
        ("(putin", "expected ')'", 0),
        ("putin)", "unexpected ')'", 5),
        ('"putin', "unclosed quote", 0),
        ("putin AND", "query ended", 9),
        ("foo:bar", "unknown field", 0),
        ("@nowhere", "unknown alias", 0),
        ("pu*tin", "wildcard may only end", 2),
        ("", "empty query", 0),
        ("OR putin", "expected a term", 0),
        ("AND", "expected a term", 0),  # upper-case keywords are operators
    ],
)
def test_syntax_errors_point_at_the_problem(query: str, message: str, offset: int) -> None:
    with pytest.raises(QuerySyntaxError, match=re.escape(message)) as info:
        parse(query, lookup)
    assert info.value.offset == offset


@pytest.mark.parametrize(
    ("query", "message", "offset"),
    [
        ("putin NEAR/x kim", "'NEAR/x' is not an operator: write NEAR/n", 6),
        ("putin NEAR/ kim", "'NEAR/' is not an operator: write NEAR/n", 6),
        ("putin NEAR/3x kim", "'NEAR/3x' is not an operator", 6),
        ("putin near/5 kim", "'near/5' is not an operator: did you mean NEAR/5?", 6),
        ("putin Near/ kim", "'Near/' is not an operator", 6),
        ("putin NEAR5 kim", "'NEAR5' is not an operator: did you mean NEAR/5?", 6),
        ("(putin W/5 kim)", "'W/5' is not an operator: did you mean NEAR/5?", 7),
        ("putin w/10 kim", "'w/10' is not an operator: did you mean NEAR/10?", 6),
        ("putin pre/3 kim", "did you mean NEAR/3?", 6),
        ("NEAR/x kim", "'NEAR/x' is not an operator", 0),
    ],
)
def test_a_misspelt_proximity_operator_is_an_error_not_a_phrase(
    query: str, message: str, offset: int
) -> None:
    """`NEAR/x` was the phrase "near x", silently."""
    with pytest.raises(QuerySyntaxError, match=re.escape(message)) as info:
        parse(query, lookup)
    assert info.value.offset == offset


def test_words_with_a_slash_stay_words() -> None:
    assert str(parse("24/7 coverage")) == '"24 7" AND coverage'
    assert str(parse("near/far OR w/o")) == '"near far" OR "w o"'
    assert str(parse('putin "NEAR/x" kim')) == 'putin AND "near x" AND kim'  # a phrase as written
    assert str(parse("putin NEAR/3 kim OR a NEAR b")) == "putin NEAR/3 kim OR a NEAR/5 b"


def test_explanation_names_field_term_and_snippet() -> None:
    doc = Document(
        title="Putin in Pyongyang", text="Moscow and Pyongyang signed a new treaty today."
    )
    spans = evaluate(parse('@russia AND (treaty OR "strategic partnership")', lookup), doc)
    assert spans is not None
    hits = {(h.field, h.term): h.snippet for h in explain(spans, doc)}
    assert hits[("title", "@russia: Putin")] == "«Putin» in Pyongyang"
    assert hits[("text", "treaty")] == "Moscow and Pyongyang signed a new «treaty» today."
    # terms under NOT never explain a match
    spans = evaluate(parse("putin NOT xi", lookup), doc)
    assert [h.term for h in explain(spans or [], doc)] == ["putin"]


words = st.text(alphabet="abcdefghij", min_size=1, max_size=6)


@given(st.lists(words, min_size=1, max_size=5))
def test_a_phrase_matches_its_own_text(parts: list[str]) -> None:
    phrase = " ".join(parts)
    assert matches(f'"{phrase}"', f"before {phrase.upper()} after")


@given(
    st.recursive(
        words.filter(lambda w: w not in ("and",)),
        lambda inner: st.one_of(
            st.tuples(inner, inner).map(lambda t: f"({t[0]} OR {t[1]})"),
            st.tuples(inner, inner).map(lambda t: f"{t[0]} AND {t[1]}"),
            inner.map(lambda q: f"NOT {q}"),
        ),
        max_leaves=8,
    )
)
def test_printed_query_parses_to_the_same_tree(query: str) -> None:
    tree = parse(query)
    assert parse(str(tree)) == tree


# --- rule files ---------------------------------------------------------------------


def test_bundled_rules_load_and_their_examples_hold() -> None:
    rules = load_rules(RULES)
    ids = {r.id for r in rules.rules}
    assert "dprk-russia-treaty" in ids and len(ids) >= 3
    for rule in rules.rules:
        assert rule.examples_match, rule.id
        for text in rule.examples_match:
            assert rule.match(Document(text=text)), (rule.id, text)
        for text in rule.examples_no_match:
            assert not rule.match(Document(text=text)), (rule.id, text)


def write_rules(tmp_path: Path, body: str, aliases: str = "dprk: [North Korea]\n") -> Path:
    (tmp_path / "aliases.yaml").write_text(aliases)
    (tmp_path / "rule.yaml").write_text(body)
    return tmp_path


def test_query_error_names_file_line_and_column(tmp_path: Path) -> None:
    directory = write_rules(tmp_path, "id: r1\nname: R\nquery: '@dprk AND (treaty'\n")
    with pytest.raises(RuleError) as info:
        load_rules(directory)
    err = info.value
    assert (err.path, err.line, err.column) == (str(tmp_path / "rule.yaml"), 3, 19)
    assert "expected ')'" in str(err)


def test_a_misspelt_near_in_a_rule_file_names_line_and_column(tmp_path: Path) -> None:
    directory = write_rules(tmp_path, "id: r1\nname: R\nquery: '@dprk NEAR/x treaty'\n")
    with pytest.raises(RuleError) as info:
        load_rules(directory)
    err = info.value
    assert (err.path, err.line, err.column) == (str(tmp_path / "rule.yaml"), 3, 15)
    assert "'NEAR/x' is not an operator" in str(err)


def test_a_typed_query_gets_the_hints_of_a_rule_file() -> None:
    """The desk's search and tester: `putin and kim` is three words, as in a rule file
    (a hint, not an error: "and" may be meant); a misspelt NEAR is an error."""
    rule = ad_hoc_rule("putin and kim", ALIASES)
    assert [str(w) for w in rule.warnings] == [
        "query:1:7: query: 'and' is searched as a word: did you mean AND?"
    ]
    assert rule.match(Document(text="Putin and Kim met.")) is not None  # it still runs
    hints = ad_hoc_rule("@russia or xi not kim near treaty", ALIASES).warnings
    assert [(w.column, w.message.rsplit(" ", 1)[1]) for w in hints] == [
        (9, "OR?"),
        (15, "NOT?"),
        (23, "NEAR?"),
    ]
    assert ad_hoc_rule("putin AND kim", ALIASES).warnings == ()
    with pytest.raises(RuleError, match=re.escape("query:1:7: query: 'NEAR/x' is not")):
        ad_hoc_rule("putin NEAR/x kim", ALIASES)


def test_unknown_alias_is_an_error(tmp_path: Path) -> None:
    directory = write_rules(tmp_path, "id: r1\nname: R\nquery: '@korea AND treaty'\n")
    with pytest.raises(RuleError, match=r"rule.yaml:3:9: query: unknown alias @korea"):
        load_rules(directory)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("id: r1\nname: R\n", "missing 'query'"),
        ("id: r1\nname: R\nquery: x\nseverity: urgent\n", "severity must be one of"),
        ("id: r1\nname: R\nquery: x\nquerry: y\n", "unknown key 'querry', did you mean 'query'?"),
        ("id: r1\nname: R\nquery: x\nlanguage: [en]\n", "did you mean 'languages'?"),
        ("id: r1\nname: R\nquery: x\ncolour: red\n", r"unknown key 'colour' \(expected one"),
        (
            "id: r1\nname: R\nquery: x\nexamples: {matches: [x]}\n",
            "unknown examples key 'matches', did you mean 'match'?",
        ),
        ("id: R 1\nname: R\nquery: x\n", "bad rule id"),
        ("id: r1\nname: R\nquery: x\nmin_score: 0\n", "min_score must be at least 1"),
        ("id: r1\nname: R\nquery: NOT x\n", "needs a term outside NOT"),
        ("id: r1\nname: R\nquery: x\nbackfill: soon\n", "backfill: expected a duration"),
        ("id: r1\nname: R\nquery: [x\n", "invalid YAML"),
        ("- id: r1\n  name: R\n  query: x\n- id: r1\n  name: S\n  query: y\n", "also defined"),
    ],
)
def test_bad_rule_files_fail_loudly(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        load_rules(write_rules(tmp_path, body))


def test_a_list_of_rules_in_one_file(tmp_path: Path) -> None:
    body = "- id: r1\n  name: R\n  query: treaty\n- id: r2\n  name: S\n  query: '@dprk'\n"
    rules = load_rules(write_rules(tmp_path, body))
    assert [r.id for r in rules.rules] == ["r1", "r2"]
    assert [m.rule_id for m in rules.match(Document(text="North Korea treaty"))] == ["r1", "r2"]


def test_rule_options(tmp_path: Path) -> None:
    body = (
        "- {id: en-only, name: E, query: treaty, languages: [en]}\n"
        "- {id: strict, name: S, query: treaty OR pact, min_score: 2}\n"
        "- {id: off, name: O, query: treaty, enabled: false}\n"
    )
    rules = load_rules(write_rules(tmp_path, body))
    found = {m.rule_id for m in rules.match(Document(text="a treaty", lang="de"))}
    assert found == set()  # en-only: wrong language; strict: score 1; off: disabled
    found = {m.rule_id for m in rules.match(Document(text="a treaty and a pact", lang="en"))}
    assert found == {"en-only", "strict"}


# --- prefilter ----------------------------------------------------------------------

VOCAB = ["putin", "kim", "treaty", "pact", "korea", "north", "russia", "sanctions", "xi"]
leaf = st.one_of(
    st.sampled_from(VOCAB),
    st.sampled_from(VOCAB).map(lambda w: w[:3] + "*"),
    st.tuples(st.sampled_from(VOCAB), st.sampled_from(VOCAB)).map(lambda t: f'"{t[0]} {t[1]}"'),
    st.sampled_from(["@dprk", "@russia", "title:putin", "lang:en"]),
)
queries = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda t: f"({t[0]} OR {t[1]})"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]} AND {t[1]})"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]} NEAR/3 {t[1]})"),
        inner.map(lambda q: f"(NOT {q})"),
    ),
    max_leaves=6,
)


@given(st.lists(queries, min_size=1, max_size=8), st.lists(st.sampled_from(VOCAB), max_size=30))
def test_the_prefilter_never_loses_a_match(qs: list[str], words: list[str]) -> None:
    from monitor.rules.model import Rule, RuleSet

    rules = tuple(
        Rule(id=f"r{n}", name="r", query=q, node=parse(q, lookup)) for n, q in enumerate(qs)
    )
    rule_set = RuleSet(rules, ALIASES)
    doc = Document(title=" ".join(words[:3]), text=" ".join(words[3:]), lang="en")
    assert rule_set.match(doc) == rule_set.match_all(doc)


def test_the_prefilter_skips_rules_that_cannot_match() -> None:
    from monitor.rules.model import Rule, RuleSet

    qs = ["treaty AND putin", "sanction* OR xi", '"north korea" AND NOT pact', "NOT xi"]
    rules = RuleSet(
        tuple(Rule(id=f"r{n}", name="r", query=q, node=parse(q)) for n, q in enumerate(qs)), {}
    )
    doc = Document(text="New sanctions on North Korea")
    assert [r.id for r in rules.prefilter.candidates(doc.vocabulary())] == ["r1", "r2", "r3"]
    # "NOT xi" is a candidate for every document but has no term to score: it never fires
    # (and the loader refuses such a rule)
    assert [m.rule_id for m in rules.match(doc)] == ["r1", "r2"]


def test_sources_include_and_exclude(tmp_path: Path) -> None:
    body = (
        "- {id: only-wires, name: W, query: treaty, sources: {include: [Reuters, apnews.com]}}\n"
        "- {id: no-rt, name: N, query: treaty, sources: {exclude: [rt.com, TASS]}}\n"
    )
    rules = load_rules(write_rules(tmp_path, body))

    def fired(source: str, url: str) -> set[str]:
        doc = Document(text="a treaty", source=source, url=url)
        return {m.rule_id for m in rules.match(doc)}

    assert fired("REUTERS", "https://www.reuters.com/a") == {"only-wires", "no-rt"}
    assert fired("AP", "https://apnews.com/article/x") == {"only-wires", "no-rt"}
    assert fired("RT", "https://www.rt.com/russia/1") == set()
    assert fired("Tass", "https://tass.com/2") == set()
    assert fired("Korea Herald", "https://www.koreaherald.com/3") == {"no-rt"}
    with pytest.raises(RuleError, match="unknown sources key 'only'"):
        load_rules(write_rules(tmp_path, "id: r\nname: R\nquery: x\nsources: {only: [a]}\n"))


@given(queries)
def test_any_printed_query_parses_back_to_the_same_tree(query: str) -> None:
    tree = parse(query, lookup)
    assert parse(str(tree), lookup) == tree


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("id: r\nname: R\nquery: '" + "(" * 600 + "x" + ")" * 600 + "'\n", "nested more than 40"),
        ("id: r\nname: R\nquery: '" + "NOT " * 2000 + "x'\n", "nested more than 40"),
        ("id: r\nname: R\nquery: '" + "title:" * 2000 + "x'\n", "nested more than 40"),
        ("id: r\nname: R\nquery: '" + " NEAR ".join(["a"] * 1200) + "'\n", "nested more than 40"),
        (
            "id: r\nname: R\nquery: x\nexamples: " + "[" * 3000 + "]" * 3000 + "\n",
            "nested too deeply",
        ),
        ("id: r\nname: R\nquery: x\nexamples:\n  ? [m]\n  : [a]\n", "not a plain name"),
        ("id: r\nname: ''\nquery: x\n", "name must not be empty"),
        ("id: r\nname: R\nquery: x\nquery: y\n", "'query' is given twice"),
    ],
)
def test_hostile_rule_files_are_clear_errors(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(RuleError, match=re.escape(message)):
        load_rules(write_rules(tmp_path, body))


def test_aliases_differing_only_in_case_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="defined twice"):
        load_rules(write_rules(tmp_path, "id: r\nname: R\nquery: x\n", "a: [x]\nA: [y]\n"))


def test_near_scales_and_never_pairs_a_hit_with_itself() -> None:
    doc = Document(text="launched missile " * 4000)
    spans = evaluate(parse("launch* NEAR/6 missile*"), doc)
    assert spans is not None and len(spans) == 8000
    assert not matches("kim NEAR/1 kim", "Kim met Putin")
    assert matches("kim NEAR/1 kim", "Kim and Kim")


def test_score_counts_each_query_term_once() -> None:
    doc = Document(title="Putin in Pyongyang", text="Putin, Russia and the Kremlin")
    spans = evaluate(parse("@russia", lookup), doc)
    assert score(explain(spans or [], doc)) == 2  # one term, hit in the title


def test_decomposed_unicode_matches_like_composed() -> None:
    import unicodedata

    text = unicodedata.normalize("NFD", "Müller flew to São Paulo")
    assert matches('müller AND "sao paulo"', text)
    assert not matches("मोदी", "मैं दूर हूँ")  # Devanagari vowel signs stay inside words


def test_updates_is_always_or_when_new(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("id: r\nname: R\nquery: x\nupdates: when-new\n")
    assert load_rules(tmp_path).rules[0].updates == "when-new"
    (tmp_path / "r.yaml").write_text("id: r\nname: R\nquery: x\nupdates: sometimes\n")
    with pytest.raises(RuleError, match=r"r.yaml:4:10: updates must be one of always, when-new"):
        load_rules(tmp_path)
