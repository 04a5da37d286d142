"""Tokenisation shared by rule matching and dedup.

A token is a run of letters and digits. It is compared case- and diacritic-insensitively,
so "Kim Jong-un", "Kim Jong Un" and "KIM JONG UN" give the same tokens, and "DPRK-Russia"
gives two. Offsets point into the original string, for snippets.
"""

from __future__ import annotations

import re
import unicodedata
from itertools import accumulate, repeat
from typing import NamedTuple

import regex

# Letters, digits and combining marks: "Müller" in decomposed form, or Devanagari words with
# their vowel signs, stay one word.
_WORD = regex.compile(r"[\p{L}\p{N}\p{M}]+")
_WORDS = regex.compile(r"([\p{L}\p{N}\p{M}]+)")  # split keeps the words, and so the offsets
# Texts whose only non-ASCII characters are quotes, dashes, spaces and other caseless
# punctuation (most English news) have the tokens of their ASCII letters and digits: the
# standard `re` engine finds those faster, and lower-casing keeps every offset.
_PUNCTUATION = "".join(
    c
    for c in "\u00a0\u00ab\u00ad\u00b0\u00b4\u00b7\u00bb\u00d7\u2009\u200b\u2010\u2011\u2012\u2013"
    "\u2014\u2015\u2018\u2019\u201a\u201c\u201d\u201e\u2022\u2026\u2032\u2033\u2039\u203a\u20ac"
    "\u2122\u2212\u00a3\u00a9\u00ae\u202f\ufeff"
    if not _WORD.match(c) and c.lower() == c
)
_OTHER = re.compile(f"[^\\x00-\\x7f{re.escape(_PUNCTUATION)}]")
_ASCII_WORDS = re.compile(r"([a-z0-9]+)")


class Token(NamedTuple):
    norm: str
    start: int
    end: int


def fold(word: str) -> str:
    """Case- and diacritic-insensitive form of a word."""
    if word.isascii():
        return word.lower()
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def tokens(text: str) -> list[Token]:
    return as_tokens(*token_columns(text))


def as_tokens(norms: list[str], starts: list[int], ends: list[int]) -> list[Token]:
    """Tokens from their columns (`token_columns`)."""
    # tuple.__new__ makes each Token in C, without a Python call per word
    return list(map(tuple.__new__, repeat(Token), zip(norms, starts, ends, strict=True)))


def token_columns(text: str) -> tuple[list[str], list[int], list[int]]:
    """The tokens' folded words, starts and ends, as three lists (no Token per word)."""
    if _OTHER.search(text) is None:  # ASCII words: lower-casing keeps every offset
        parts = _ASCII_WORDS.split(text.lower())
        found = parts[1::2]
    else:
        parts = _WORDS.split(text)
        found = _folded(parts[1::2])
    # split alternates gaps and words: the running lengths are where each word starts and ends
    offsets = list(accumulate(map(len, parts)))
    return found, offsets[0::2][: len(found)], offsets[1::2]


def words(text: str) -> list[str]:
    """Folded tokens only, without offsets."""
    if _OTHER.search(text) is None:
        return _ASCII_WORDS.findall(text.lower())
    return _folded(_WORD.findall(text))


def _folded(found: list[str]) -> list[str]:
    joined = " ".join(found)
    if joined.isascii():  # ASCII words between non-ASCII punctuation, in one call
        return joined.lower().split(" ") if found else []
    return [w.lower() if w.isascii() else fold(w) for w in found]


def normalise_space(text: str) -> str:
    return " ".join(text.split())
