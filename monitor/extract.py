"""Article text and metadata from a page (trafilatura), and plain text from feed HTML.

trafilatura is not thread-safe (lxml segfaults seen under threads): call it from one
thread per process; a daemon runs it in a process pool.
"""

from __future__ import annotations

import functools
import html
import io
import lzma
import math
import os
import re
import shutil
import tempfile
import threading
import unicodedata
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import lxml.etree
import lxml.html
import numpy as np
import trafilatura

from monitor.errors import ExtractError
from monitor.model import Article
from monitor.text import normalise_space

MIN_TEXT = 200  # characters: below this a page is not an article


def extract(html: bytes | str, *, url: str, metadata: bool = True) -> Article:
    """The main text of a page with its language and canonical URL, and with `metadata` its
    title, date, author and site too. (trafilatura's metadata search costs more than the
    text itself; callers that have them from the feed skip it.)"""
    try:
        doc = trafilatura.bare_extraction(
            html,
            url=url,
            fast=True,
            include_comments=False,
            with_metadata=metadata,
        )
    except (ValueError, TypeError) as exc:  # trafilatura's own input errors
        raise ExtractError(f"{url}: {exc}") from exc
    if doc is None or isinstance(doc, dict):  # dict only when as_dict=True
        raise ExtractError(f"{url}: no article text found")
    text = (doc.text or "").strip()
    if len(text) < MIN_TEXT:
        raise ExtractError(f"{url}: no article text found ({len(text)} characters)")
    return Article(
        text=text,
        title=(doc.title or "").strip(),
        author=(doc.author or "").strip(),
        published=_date(doc.date),
        site=(doc.sitename or "").strip(),
        language=detect_language(text),
        canonical_url=_canonical(doc.url if metadata else _declared_canonical(html), url),
        from_page=True,
    )


_BLOCKS = ("p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "tr", "pre")


def html_to_text(fragment: str) -> str:
    """Plain text of a feed's HTML summary or content: one line per block."""
    if "<" not in fragment:
        return normalise_space(html.unescape(fragment))
    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (lxml.etree.ParserError, ValueError):
        return ""
    for element in list(root.iter("script", "style", "template")):
        element.drop_tree()
    for element in root.iter(*_BLOCKS):
        element.tail = "\n" + (element.tail or "")
    lines = (normalise_space(line) for line in root.text_content().split("\n"))
    return "\n".join(line for line in lines if line)


@functools.cache
def _identifier() -> _Identifier:  # loaded only when first needed
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier
    from py3langid.modelio import _to_array

    packed = MODEL_DIR / MODEL_FILE
    arrays = _unpacked_model(packed)
    if arrays is None:
        return _Identifier(LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True))
    return _Identifier(  # what from_model_file builds from the same arrays
        LanguageIdentifier(
            arrays["ptc"],
            arrays["pc"],
            arrays["classes"].tolist(),
            _to_array(arrays["nextmove"]),
            arrays["out_feat"].tolist(),
            norm_probs=True,
            tk_row=_to_array(arrays["nextmove_row"]),
        )
    )


_MODEL_ARRAYS = ("ptc", "pc", "classes", "nextmove", "nextmove_row", "out_feat")


def _unpacked_model(packed: Path) -> dict[str, np.ndarray] | None:
    """py3langid's model arrays, from a copy unpacked once into the user's cache: its `.xz`
    takes ~0.7 s of CPU to decompress, in every process that detects a language (each CLI
    command, each daemon start). None when no copy can be read or written (a read-only
    home): the caller loads the packed file."""
    stat = packed.stat()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = cache / "news-monitor" / f"langid-{stat.st_size}-{int(stat.st_mtime)}"
    try:
        if not folder.is_dir():
            _unpack(packed, folder)
        return {name: np.load(folder / f"{name}.npy", allow_pickle=False) for name in _MODEL_ARRAYS}
    except (OSError, ValueError, KeyError):
        return None


def _unpack(packed: Path, folder: Path) -> None:
    """Write the model's arrays as .npy files into `folder`, atomically: another process
    unpacking at the same time leaves one whole copy."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        with lzma.open(packed) as source, np.load(io.BytesIO(source.read())) as data:
            for name in _MODEL_ARRAYS:
                np.save(staging / f"{name}.npy", data[name], allow_pickle=False)
        os.rename(staging, folder)
    except OSError:
        if not folder.is_dir():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def detect_language(text: str) -> str:
    """ISO 639-1 code of the text's language, or "" when unsure."""
    if len(text) < 20:
        return ""
    lang, prob = _identifier().classify(text[:1000])  # as sure as on 3,000, a third the cost
    return lang if prob >= 0.3 else ""


class _Identifier:
    """py3langid's model and decision (naive Bayes over byte n-grams, probabilities
    normalised), its byte-by-byte automaton walk done for all bytes at once in numpy: the
    same (language, probability) as its `classify`, 2-3 times faster on 1,000 characters.

    The automaton (Aho-Corasick) is in the state of the longest suffix of the bytes read
    that begins one of its n-grams, at most `depth` bytes long: so the state after byte i is
    the one reached from the start over bytes i-depth+1..i alone, and `depth` vectorised
    steps give every byte's state. tests/test_analysis_reference.py holds it to py3langid's
    own `classify`.
    """

    def __init__(self, model: Any) -> None:
        self.nextmove = np.frombuffer(model.tk_nextmove, dtype=np.uint32)  # shared, not copied
        rows = np.asarray(model.tk_row, dtype=np.int64)
        self.rowbase = rows << 8
        self.output = np.asarray(model.tk_output, dtype=np.int64)
        self.ptc, self.pc = model.nb_ptc, model.nb_pc
        self.classes: list[str] = list(model.nb_classes)
        first: dict[str, int] = {}
        self.aliases = [  # a label twice (a script variant): its scores go to the first
            (first[c], i) for i, c in enumerate(self.classes) if first.setdefault(c, i) != i
        ]
        self.depth = _depth(self.nextmove, rows)
        # The model's weights are float16, and numpy converts them slowly (~5 ns each, 64,000
        # per text): each feature's row is converted once, when first seen, and kept. Rows
        # are filled in order, so only those used take memory (~13 MB for the ~23,000
        # features of English news; all 100,000 would take 57 MB).
        self.slot = np.full(len(self.ptc), -1, dtype=np.int64)
        self.converted = np.empty(self.ptc.shape, dtype=np.float32)  # untouched: not resident
        self.used = 0
        self.lock = threading.Lock()

    def states(self, data: bytes) -> np.ndarray:
        """The automaton's state after each byte."""
        letters = np.frombuffer(data, dtype=np.uint8).astype(np.int64)
        state = np.zeros(len(letters), dtype=np.uint32)
        for back in range(self.depth - 1, 0, -1):  # byte i-back, for bytes that have one
            state[back:] = self.nextmove[self.rowbase[state[back:]] + letters[:-back]]
        return self.nextmove[self.rowbase[state] + letters]

    def rows(self, features: np.ndarray) -> np.ndarray:
        """The weights of the given (distinct) features, as float32."""
        slots = self.slot[features]
        if (slots < 0).any():
            with self.lock:
                new = features[self.slot[features] < 0]
                end = self.used + len(new)
                self.converted[self.used : end] = self.ptc[new]
                self.slot[new] = np.arange(self.used, end)
                self.used = end
                slots = self.slot[features]
        return self.converted[slots]

    def classify(self, text: str) -> tuple[str, float]:
        if text.isupper():
            text = text.lower()
        data = unicodedata.normalize("NFC", text).encode("utf8", errors="surrogatepass")
        features = self.output[self.states(data)]
        features = features[features >= 0]
        if features.size:
            # the features in order of first occurrence, as py3langid counts them
            counted = Counter(features.tolist())
            found = np.fromiter(counted.keys(), dtype=np.intp, count=len(counted))
            counts = np.fromiter(counted.values(), dtype=np.float32, count=len(counted))
            scores = np.log1p(counts) @ self.rows(found) + self.pc
        else:
            scores = np.zeros(len(self.classes), dtype=np.float32)
        scores *= 1.0 / math.sqrt(len(data) or 1)  # py3langid's calibration by length
        np.exp(scores - scores.max(), out=scores)
        scores /= scores.sum()
        for i, j in self.aliases:
            scores[i] += scores[j]
            scores[j] = 0.0
        best = int(scores.argmax())
        return self.classes[best], float(scores[best])


def _depth(nextmove: np.ndarray, rows: np.ndarray) -> int:
    """The length of the automaton's longest n-gram prefix: the most steps from the start
    state to any other (breadth first; states that share a row of moves expanded once)."""
    seen = np.zeros(len(rows), dtype=bool)
    expanded = np.zeros(int(rows.max()) + 1, dtype=bool)
    seen[0] = True
    frontier, depth = np.zeros(1, dtype=np.int64), 0
    while True:
        row = np.unique(rows[frontier])
        row = row[~expanded[row]]
        expanded[row] = True
        reached = np.zeros(len(rows), dtype=bool)
        for start in range(0, len(row), 256):  # small blocks: no large temporary arrays
            block = (row[start : start + 256] << 8)[:, None] + np.arange(256)
            reached[nextmove[block.ravel()]] = True
        frontier = np.flatnonzero(reached & ~seen)
        if not frontier.size:
            return max(depth, 1)
        seen[frontier] = True
        depth += 1


_CANONICAL = re.compile(
    rb"""<link\b(?=[^>]*\brel\s*=\s*["']?canonical\b)[^>]*?\bhref\s*=\s*["']?([^"'\s>]+)""",
    re.IGNORECASE,
)


def _declared_canonical(page: bytes | str) -> str:
    """The <link rel="canonical"> of a page's head, found without parsing the page."""
    head = page[:65536]
    found = _CANONICAL.search(head if isinstance(head, bytes) else head.encode("utf-8", "replace"))
    return html.unescape(found.group(1).decode("utf-8", "replace")) if found else ""


def _canonical(declared: str | None, fetched: str) -> str:
    """The page's own canonical URL, unless it cannot be this article's: another host, or
    the site's home page (templates that point every page there would merge articles)."""
    declared = (declared or "").strip()
    if not declared or declared == fetched:
        return ""
    try:
        there, here = urlsplit(declared), urlsplit(fetched)
    except ValueError:
        return ""
    if there.path in ("", "/") and not there.query:
        return ""
    if here.scheme in ("http", "https") and there.hostname != here.hostname:
        return ""
    return declared


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
