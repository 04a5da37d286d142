"""Fingerprints: pure functions, checked on the seed texts and by properties."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.dedup.fingerprint import (
    band_buckets,
    cosine,
    decode_signature,
    encode_signature,
    jaccard,
    minhash,
    salient_terms,
    shingle_hashes,
)

from .conftest import FIXTURES

SEEDS = sorted((FIXTURES / "seeds").glob("*.txt"))


def signature(text: str) -> np.ndarray:
    return minhash(shingle_hashes(text))


WORDS = st.sampled_from(["Putin", "kim", "Treaty", "signed", "in", "Pyongyang"])


@settings(max_examples=50)
@given(st.lists(WORDS, min_size=1, max_size=40), st.sampled_from([" ", "  ", "\n", "\t "]))
def test_signature_is_stable_under_whitespace_and_case(words: list[str], sep: str) -> None:
    text = " ".join(words)
    assert np.array_equal(signature(text), signature(sep.join(w.upper() for w in words)))


def test_wire_copy_with_edits_is_close_and_other_reports_are_not() -> None:
    texts = [p.read_text() for p in SEEDS]
    original = texts[1]
    words = original.split()
    words[10:14] = ["the", "two", "leaders"]
    words[60] = "reportedly"
    copy = "SOFIA, June 19 (BTA) - " + " ".join(words[:-30]) + " Novinite.com - Sofia News Agency"
    assert jaccard(signature(original), signature(copy)) >= 0.6
    for other in texts[:1] + texts[2:]:  # rewrites of the same event, not copies
        assert jaccard(signature(original), signature(other)) < 0.2


def test_signature_round_trips_and_bands_cover_it() -> None:
    sig = signature(SEEDS[0].read_text())
    assert np.array_equal(decode_signature(encode_signature(sig)), sig)
    buckets = band_buckets(sig)
    assert len(buckets) == 32 and len(set(buckets)) > 1


def test_empty_text_has_a_signature() -> None:
    assert signature("").shape == (128,)
    assert jaccard(signature("one"), signature("one")) == 1.0


def test_salient_terms_are_names_and_title_words() -> None:
    terms = salient_terms(
        "Putin visits Pyongyang", "Russian President Vladimir Putin met Kim. The talks went on."
    )
    assert {"putin", "pyongyang", "kim", "vladimir", "visits"} <= terms.weights.keys()
    assert "the" not in terms.weights and "talks" not in terms.weights  # not capitalised
    assert terms.top(1) == ["putin"]
    same = salient_terms("Kim hosts Putin", "Putin arrived in Pyongyang to meet Kim.")
    other = salient_terms("Ghent approves tram", "The Ghent council approved a tram line.")
    assert cosine(terms, same) > 0.35 > cosine(terms, other)
