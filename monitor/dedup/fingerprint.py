"""Fingerprints of an article: a MinHash of its word 3-grams (near-duplicates) and a
weighted set of salient terms (same story). Pure functions over strings and arrays.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import heapq
import json
import math
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monitor.text import words

NUM_PERM = 128
BANDS = 42  # 42 bands of 3 rows: a pair at Jaccard 0.5 collides in one at least 99.6% of the time
ROWS = 3
SHINGLE = 3
_CHUNK = 8192  # shingles per block: 128 x 8192 x 8 bytes = 8 MiB at most

_rng = np.random.default_rng(20240619)  # fixed: signatures must agree across processes
_A = _rng.integers(1, 2**63, size=NUM_PERM, dtype=np.uint64) | np.uint64(1)
_B = _rng.integers(0, 2**63, size=NUM_PERM, dtype=np.uint64)
_MIX1 = np.uint64(0x9E3779B97F4A7C15)
_MIX2 = np.uint64(0xBF58476D1CE4E5B9)


class _WordHashes(dict[str, int]):
    """CRC-32 of each word, remembered (words repeat: a lookup costs a fifth of a hash)."""

    LIMIT = 50_000  # words kept at most (~7 MB); then it starts anew

    def __missing__(self, word: str) -> int:
        if len(self) >= self.LIMIT:
            self.clear()
        value = self[word] = zlib.crc32(word.encode())
        return value


_WORD_HASHES = _WordHashes()


def shingle_hashes(text: str | list[str], k: int = SHINGLE) -> np.ndarray:
    """Unique 64-bit hashes of the text's word k-grams (of its words, if fewer than k). The
    text may come as its words already (`monitor.text.words`)."""
    toks = words(text) if isinstance(text, str) else text
    if not toks:
        return np.zeros(0, dtype=np.uint64)
    # int64, then viewed: numpy converts Python ints to uint64 at half the speed
    found = map(_WORD_HASHES.__getitem__, toks)
    h = np.fromiter(found, dtype=np.int64, count=len(toks)).view(np.uint64)
    if len(h) >= k:
        s = h[: len(h) - k + 1].copy()
        for i in range(1, k):
            s = s * _MIX1 + h[i : len(h) - k + 1 + i]  # wraps mod 2**64, as intended
        h = s
    h = h ^ (h >> np.uint64(31))
    h = h * _MIX2
    return np.unique(h)


def minhash(hashes: np.ndarray) -> np.ndarray:
    """128 MinHash values (uint32) by multiply-shift hashing; empty input gives all-max."""
    result = np.full(NUM_PERM, np.iinfo(np.uint64).max, dtype=np.uint64)
    if hashes.size:
        buffer = np.empty((NUM_PERM, min(hashes.size, _CHUNK)), dtype=np.uint64)
    for start in range(0, hashes.size, _CHUNK):  # bounded memory for any text length
        chunk = hashes[start : start + _CHUNK]
        permuted = buffer[:, : chunk.size]
        np.multiply(_A[:, None], chunk[None, :], out=permuted)
        permuted += _B[:, None]  # both wrap mod 2**64, as intended
        np.minimum(result, permuted.min(axis=1), out=result)
    # the top 32 bits of the least value are the least of the top 32 bits: one shift, after
    return (result >> np.uint64(32)).astype(np.uint32)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity of the two shingle sets."""
    return float(np.count_nonzero(a == b)) / NUM_PERM


def band_buckets(signature: np.ndarray) -> list[str]:
    """One bucket name per LSH band."""
    rows = signature[: BANDS * ROWS].reshape(BANDS, ROWS)
    return [hashlib.blake2b(r.tobytes(), digest_size=8).hexdigest() for r in rows]


def encode_signature(signature: np.ndarray) -> str:
    return base64.b64encode(signature.astype("<u4").tobytes()).decode()


def decode_signature(data: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(data), dtype="<u4").astype(np.uint32)


# Function words, sentence openers and news boilerplate: never salient on their own.
STOPWORDS = frozenset(
    """
    a about above after again against ago all also although am among an and another any
    are around as at be because been before being below between both but by can could
    did do does during each early either even ever every few for from further had has
    have having he her here hers him his how however i if in into is it its just last
    late later least less like many may me meanwhile might more most much must my near
    neither new next no nor not now of off on once one only or other our out over own
    per perhaps said same says she should since so some still such than that the their
    them then there these they this those though through to today too under until up
    upon us very was we were what when where whether which while who whom whose why will
    with within without would yet you your according added adds amid ahead told tuesday
    wednesday thursday friday saturday sunday monday january february march april june
    july august september october november december jan feb mar apr jun jul aug sep sept
    oct nov dec read more update updated news reported reports report agency media
    official officials first second two three four five six seven eight nine ten year
    years week day days mr mrs ms dr am pm cdt cst edt est gmt utc kst
    """.split()
)


@dataclass(frozen=True, slots=True)
class StoryTerms:
    """A unit-length TF-IDF vector of an article's most distinctive terms."""

    weights: dict[str, float]

    def top(self, n: int) -> list[str]:
        return sorted(self.weights, key=lambda t: (-self.weights[t], t))[:n]


TITLE_WEIGHT = 2.0  # a title word counts as much as two occurrences in the text
VECTOR_TERMS = 60  # terms kept per article
PRIOR_DOCUMENTS = 50  # IDF smoothing: as if 50 more documents, like the background, were in
BACKGROUND = Path(__file__).with_name("background.json")  # benchmarks/build_background.py
MAX_FEATURES = 1000  # distinct terms counted per article (bounds Redis work per item)


def stem(word: str) -> str:
    """A light English suffix strip, so "sanctions"/"sanctioned" and "sanction" meet."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > 4 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def features(title: str | list[str], text: str | list[str]) -> dict[str, float]:
    """Term counts of an article: stemmed content words, title words weighted up. Title and
    text may come as their words already."""
    counts: dict[str, float] = {}
    for word, n in Counter(words(text) if isinstance(text, str) else text).items():
        if term := _term(word):  # distinct words only: fewer calls than one per word
            counts[term] = counts.get(term, 0) + n
    for word in words(title) if isinstance(title, str) else title:
        if term := _term(word):
            counts[term] = counts.get(term, 0) + TITLE_WEIGHT
    if len(counts) > MAX_FEATURES:  # a huge text: its most frequent terms say enough
        kept = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_FEATURES]
        return dict(kept)
    return counts


@functools.cache
def _background() -> tuple[dict[str, int], int]:
    data = json.loads(BACKGROUND.read_text(encoding="utf-8"))
    return data["df"], data["documents"]


@functools.lru_cache(maxsize=200_000)
def prior_df(term: str) -> float:
    """How many of the PRIOR_DOCUMENTS have the term, by its share of the background
    documents (a term the background does not have: none). So a common word weighs little
    from the first item on, when the window's own frequencies say nothing yet."""
    df, documents = _background()
    n = df.get(term)
    return round(PRIOR_DOCUMENTS * n / documents, 4) if n else 0.0


def tfidf(counts: dict[str, float], df: dict[str, int], documents: int) -> StoryTerms:
    """The article's vector, given how many of `documents` recent articles have each term.
    The index computes it in the daemon (dedup/gather.py:vector); this is the reference
    its tests hold it to."""
    scale = documents + PRIOR_DOCUMENTS
    weights = {
        term: (1 + math.log(count)) * math.log(scale / (df.get(term, 0) + prior_df(term) + 1))
        for term, count in counts.items()
    }
    top = heapq.nsmallest(VECTOR_TERMS, weights.items(), key=lambda kv: (-kv[1], kv[0]))
    norm = math.sqrt(sum(w * w for _, w in top)) or 1.0
    return StoryTerms({term: w / norm for term, w in top if w > 0})


@functools.lru_cache(maxsize=200_000)
def _term(word: str) -> str:
    """The term a word counts as ("" if none): words repeat, so this is remembered."""
    return stem(word) if _useful(word) else ""


def _useful(word: str) -> bool:
    return len(word) > 1 and not word.isdigit() and word not in STOPWORDS


def cosine(a: StoryTerms, b: StoryTerms) -> float:
    if not a.weights or not b.weights:
        return 0.0
    small, large = sorted((a.weights, b.weights), key=len)
    dot = sum(w * large.get(t, 0.0) for t, w in small.items())
    norm = math.sqrt(sum(w * w for w in a.weights.values()))
    norm *= math.sqrt(sum(w * w for w in b.weights.values()))
    return dot / norm if norm else 0.0
