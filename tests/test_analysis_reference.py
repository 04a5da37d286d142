"""The analysis made faster gives what its plain versions gave: the same tokens, folded
words, shingle hashes, MinHash signatures, names, figures, wires and languages. The plain
versions are kept here as the reference (one regex match, one fold, one hash per word; the
language identifier's own byte-by-byte walk), and a few results are checked by hand."""

from __future__ import annotations

import functools
import unicodedata
import zlib
from collections import Counter
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.dedup import fingerprint, signals, wires
from monitor.dedup.analysis import analyse
from monitor.extract import _identifier, detect_language
from monitor.model import Article, Item
from monitor.text import Token, fold, token_columns, tokens, words

# --- the reference: the plain versions -------------------------------------------------


def ref_tokens(text: str) -> list[Token]:
    from monitor.text import _WORD as word

    if text.isascii():
        return [Token(m.group(), m.start(), m.end()) for m in word.finditer(text.lower())]
    return [Token(fold(m.group()), m.start(), m.end()) for m in word.finditer(text)]


def ref_words(text: str) -> list[str]:
    return [t.norm for t in ref_tokens(text)]


def ref_shingles(toks: list[str], k: int = fingerprint.SHINGLE) -> np.ndarray:
    if not toks:
        return np.zeros(0, dtype=np.uint64)
    h = np.fromiter((zlib.crc32(t.encode()) for t in toks), dtype=np.uint64, count=len(toks))
    if len(h) >= k:
        s = h[: len(h) - k + 1].copy()
        for i in range(1, k):
            s = s * np.uint64(0x9E3779B97F4A7C15) + h[i : len(h) - k + 1 + i]
        h = s
    h = h ^ (h >> np.uint64(31))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    return np.unique(h)


def ref_minhash(hashes: np.ndarray) -> np.ndarray:
    a, b = fingerprint._A, fingerprint._B
    result = np.full(fingerprint.NUM_PERM, np.iinfo(np.uint32).max, dtype=np.uint64)
    if hashes.size:
        permuted = (a[:, None] * hashes[None, :] + b[:, None]) >> np.uint64(32)
        np.minimum(result, permuted.min(axis=1), out=result)
    return result.astype(np.uint32)


def ref_names(text: str) -> list[str]:
    counts: Counter[str] = Counter()
    for m in signals._NAME.finditer(text):
        parts = [signals._POSSESSIVE.sub("", fold(w)) for w in m.group().split()]
        parts = [p for p in parts if p]
        while parts and parts[0] in signals._NOT_NAMES:
            parts = parts[1:]
        if not parts:
            continue
        if len(parts) == 1 and (len(parts[0]) < 3 or parts[0] in signals._NOT_NAMES):
            continue
        counts[" ".join(parts)] += 1
        if len(parts) > 1 and parts[-1] not in signals._NOT_NAMES and len(parts[-1]) > 2:
            counts[parts[-1]] += 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [n for n, _ in ranked[: signals.MAX_NAMES]]


def ref_figures(text: str) -> list[str]:
    counts: Counter[str] = Counter()
    for m in signals._FIGURE.finditer(text):
        value = m.group().replace(",", "")
        if len(value) < 2 or (len(value) == 4 and value[:2] in ("19", "20")):
            continue
        counts[value] += 1
    for m in signals._AGE.finditer(text):
        counts[next(g for g in m.groups() if g) + signals.AGE] += 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [n for n, _ in ranked[: signals.MAX_FIGURES]]


def ref_credited(text: str) -> tuple[str, ...]:
    found: dict[str, int] = {}
    for pattern in wires._PATTERNS:
        for m in pattern.finditer(text):
            name = wires._NAMES[m.group("a")]
            found[name] = min(found.get(name, m.start()), m.start())
    return tuple(sorted(found, key=found.__getitem__))


@functools.cache
def _reference_model() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def ref_language(text: str) -> tuple[str, float]:
    """py3langid's own classify (its byte-by-byte walk)."""
    return _reference_model().classify(text)  # type: ignore[no-any-return]


# --- varied texts ----------------------------------------------------------------------

TEXTS = [
    "",
    "a",
    "Police said a 21-year-old man was shot at 10:30 p.m. on Maple Street.",
    "SEOUL (Reuters) \u2014 North Korea\u2019s KCNA reported on Tuesday that Kim Jong Un "
    "\u201cinspected\u201d 1,200 troops, according to Yonhap. The AP reports 3.5 million.",
    "Sara Davidson, 19, and John O\u2019Neil, aged 34, were taken to St. Mary\u2019s. "
    "The Franklin police said the Bank of England\u2019s rate rose to 5.25%.",
    "Der russische Pr\u00e4sident traf den nordkoreanischen Machthaber in Wladiwostok.",
    "M\u00fcller und Stra\u00dfe: \u0130stanbul, \u0130zmir \u2014 NA\u00cfVE caf\u00e9 "
    "\u01c5emal \ufb01nance \u00bd \u00b2 \u2462",
    "Decomposed: Mu\u0308ller, Jose\u0301 and \u0928\u092e\u0938\u094d\u0924\u0947 "
    "\u0926\u0941\u0928\u093f\u092f\u093e.",
    "\u041a\u0440\u0435\u043c\u043b\u044c \u0437\u0430\u044f\u0432\u0438\u043b, "
    "\u0447\u0442\u043e \u041f\u0443\u0442\u0438\u043d \u0432\u0441\u0442\u0440\u0435"
    "\u0442\u0438\u043b\u0441\u044f \u0441 \u041a\u0438\u043c\u043e\u043c "
    "(\u0422\u0410\u0421\u0421).",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3067\u3059\u3002\u6771\u4eac"
    "\u90fd\u3067 2024 \u5e74\u3002",
    "\u0627\u0644\u0631\u0626\u064a\u0633 \u0627\u0644\u0623\u0645\u0631\u064a\u0643"
    "\u064a \u0642\u0627\u0644 \u0625\u0646 25 \u0634\u062e\u0635\u0627",
    "Prices\u00a0rose 3\u00d74 \u2212 2 \u2026 \u00ab quoted \u00bb \u2018single\u2019 "
    "\u00a9 2024 \u2122 \u20ac12,500 \u00a37 \u2022 item\u00ad break\u200b zero\ufeff",
    "ALL CAPS HEADLINE: FIRE DESTROYS 40 HOMES IN JOHNSON COUNTY",
    "under_score snake_case_words and x2y3 42nd 1st 3rd-degree",
    "Breaking news " * 300 + "(AFP) - the end, reported Interfax, cited by BTA.",
]

_SCRIPTS = st.sampled_from(
    [
        st.characters(max_codepoint=127),
        st.sampled_from(list(" \u00a0\u2014\u2019\u201c\u201d.,-'\u2013\u2026\u00ad")),
        st.sampled_from(list("\u00e9\u00fc\u00df\u0130\u0301\u0308\u01c5\ufb01\u00bd\u2462")),
        st.characters(),
        st.sampled_from(["Kim ", "Reuters", "(AP) -", " said", " 21-year-old", ", 19,", "Of "]),
    ]
)
mixed_text = st.lists(_SCRIPTS.flatmap(lambda s: s), max_size=120).map("".join)


def _same_as_reference(text: str) -> None:
    assert tokens(text) == ref_tokens(text)
    reference = ref_tokens(text)
    assert token_columns(text) == (
        [t.norm for t in reference],
        [t.start for t in reference],
        [t.end for t in reference],
    )
    assert words(text) == ref_words(text)
    hashes = fingerprint.shingle_hashes(words(text))
    assert np.array_equal(hashes, ref_shingles(ref_words(text)))
    assert np.array_equal(fingerprint.minhash(hashes), ref_minhash(hashes))
    assert signals.names(text) == ref_names(text)
    assert signals.figures(text) == ref_figures(text)
    assert wires.credited(text) == ref_credited(text)


@pytest.mark.parametrize("text", TEXTS)
def test_the_analysis_gives_what_the_reference_gives(text: str) -> None:
    _same_as_reference(text)
    if len(text) >= 1:
        assert _identifier().classify(text[:1000]) == ref_language(text[:1000])


@settings(max_examples=300, deadline=None)
@given(mixed_text)
def test_the_analysis_of_any_text_is_the_reference_s(text: str) -> None:
    _same_as_reference(text)


@settings(max_examples=60, deadline=None)
@given(mixed_text)
def test_the_language_is_py3langid_s(text: str) -> None:
    assert _identifier().classify(text) == ref_language(text)


def test_minhash_over_several_chunks_is_the_reference_s() -> None:
    hashes = np.random.default_rng(5).integers(0, 2**63, size=20_000, dtype=np.uint64)
    hashes = np.unique(hashes)
    assert np.array_equal(fingerprint.minhash(hashes), ref_minhash(hashes))
    empty = np.zeros(0, dtype=np.uint64)
    assert fingerprint.minhash(empty).tolist() == [2**32 - 1] * fingerprint.NUM_PERM


def test_the_punctuation_of_the_quick_path_is_never_part_of_a_word() -> None:
    from monitor.text import _PUNCTUATION

    assert len(_PUNCTUATION) > 30
    for c in _PUNCTUATION:
        assert words(f"a{c}b") == ["a", "b"] == ref_words(f"a{c}b")
        assert c.lower() == c and unicodedata.category(c)[0] not in "LNM"


# --- checked by hand --------------------------------------------------------------------

STORY = (
    "SEOUL (Reuters) \u2014 Kim Jong Un\u2019s sister said 1,200 soldiers and a "
    "21-year-old guard crossed at 10:30, Yonhap reported. Kim Yo Jong denied it."
)


def test_a_report_analysed_by_hand() -> None:
    url = "https://news.example/a/1"
    item = Item(guid="g", url=url, title="Kim\u2019s sister", source="s", feed="f")
    found = analyse(item, Article(text=STORY, title="", from_page=True))
    assert found.title_words == ["kim", "s", "sister"]
    assert found.text_tokens[:4] == [
        Token("seoul", 0, 5),
        Token("reuters", 7, 14),
        Token("kim", 18, 21),
        Token("jong", 22, 26),
    ]
    assert found.words[4:7] == ["un", "s", "sister"]  # the apostrophe splits "Un\u2019s"
    # once each, so in alphabetical order; "Un" and "Yo" are too short to count alone
    assert found.names == [
        "jong",
        "kim",
        "kim jong un",
        "kim yo jong",
        "reuters",
        "seoul",
        "yonhap",
    ]
    assert found.figures == ["10:30", "1200", "21", "21y"]
    assert found.wires == ("Reuters", "Yonhap")
    assert found.counts["kim"] == 2 + 2.0 and found.counts["soldier"] == 1  # title x2
    assert found.shingles.size == len(found.words) - 2  # no 3-gram twice
    assert detect_language(STORY) == "en"
    assert detect_language("Der russische Pr\u00e4sident traf den Machthaber.") == "de"
    assert detect_language("too short") == ""
