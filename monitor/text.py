"""Tokenisation shared by rule matching and dedup.

A token is a run of letters and digits. It is compared case- and diacritic-insensitively,
so "Kim Jong-un", "Kim Jong Un" and "KIM JONG UN" give the same tokens, and "DPRK-Russia"
gives two. Offsets point into the original string, for snippets.
"""

from __future__ import annotations

import unicodedata
from typing import NamedTuple

import regex

# Letters, digits and combining marks: "Müller" in decomposed form, or Devanagari words with
# their vowel signs, stay one word.
_WORD = regex.compile(r"[\p{L}\p{N}\p{M}]+")


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
    if text.isascii():  # lower-casing keeps every offset, and is the fold of ASCII words
        return [Token(m.group(), m.start(), m.end()) for m in _WORD.finditer(text.lower())]
    return [Token(fold(m.group()), m.start(), m.end()) for m in _WORD.finditer(text)]


def token_columns(text: str) -> tuple[list[str], list[int], list[int]]:
    """The tokens' folded words, starts and ends, as three lists (no Token per word)."""
    if text.isascii():
        found = [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text.lower())]
    else:
        found = [(fold(m.group()), m.start(), m.end()) for m in _WORD.finditer(text)]
    if not found:
        return [], [], []
    norms, starts, ends = zip(*found, strict=True)
    return list(norms), list(starts), list(ends)


def words(text: str) -> list[str]:
    """Folded tokens only, without offsets."""
    if text.isascii():
        return _WORD.findall(text.lower())
    return [fold(w) for w in _WORD.findall(text)]


def normalise_space(text: str) -> str:
    return " ".join(text.split())
