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
    features,
    jaccard,
    minhash,
    shingle_hashes,
    tfidf,
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
    assert len(buckets) == 42 and len(set(buckets)) > 1


def test_empty_text_has_a_signature() -> None:
    assert signature("").shape == (128,)
    assert jaccard(signature("one"), signature("one")) == 1.0


def test_story_vectors_weigh_rare_and_title_terms() -> None:
    counts = features(
        "Putin visits Pyongyang", "Russian President Vladimir Putin met Kim. The talks went on."
    )
    assert counts["putin"] == 3 and counts["visit"] == 2  # title words count twice; light stemming
    assert "the" not in counts and "on" not in counts
    df = {"putin": 40, "talk": 30}  # common terms in the last days' news
    vector = tfidf(counts, df, documents=100)
    assert abs(sum(w * w for w in vector.weights.values()) - 1) < 1e-9  # unit length
    assert vector.weights["pyongyang"] > vector.weights["putin"]  # rarer weighs more
    same = tfidf(features("Kim hosts Putin", "Putin arrived in Pyongyang to meet Kim."), df, 100)
    other = tfidf(
        features("Ghent approves tram", "The Ghent council approved a tram line."), df, 100
    )
    assert cosine(vector, same) > 0.3 > cosine(vector, other)
