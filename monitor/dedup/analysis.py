"""An article analysed once: what dedup, rules and alerts read of its text.

Tokenising, folding, shingling, counting terms, finding names, figures and credited news
agencies, and canonicalising the URL each happen here, once per item (Pipeline.process
computes it), and every stage reads the result: no stage re-tokenises the text.

    text, title -> tokens (with offsets: rule matching and snippets)
                -> folded words -> word 3-gram hashes (MinHash), term counts (story vector)
                -> names, figures (story signals), wires (agencies credited)
    item, page  -> canonical URL (identity, alerts)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monitor.dedup.fingerprint import features, shingle_hashes
from monitor.dedup.signals import figures, names
from monitor.dedup.wires import credited
from monitor.ingest.feeds import article_url
from monitor.model import Article, Item
from monitor.text import Token, as_tokens, token_columns, words


@dataclass(frozen=True, slots=True, kw_only=True)
class Analysis:
    url: str  # canonical URL of the article (feeds.article_url)
    title: str  # the item's title, else the page's
    text: str  # what dedup reads: the article's text, else the feed's summary
    title_tokens: list[Token]
    title_words: list[str]  # folded
    text_tokens: list[Token]  # of the article's text (what rules search)
    words: list[str]  # folded words of `text`
    shingles: np.ndarray  # hashes of its word 3-grams (of the title's words if it has none)
    counts: dict[str, float]  # term counts of title and text (fingerprint.features)
    names: list[str]  # capitalised spans of title and text, most frequent first
    figures: list[str]  # the numbers it gives, most frequent first
    wires: tuple[str, ...]  # news agencies the text credits


def analyse(item: Item, article: Article) -> Analysis:
    title = item.title or article.title
    title_columns = token_columns(title)
    title_words = title_columns[0]
    text_columns = token_columns(article.text)
    if article.text:
        text, body = article.text, text_columns[0]
    else:
        text = item.summary or ""
        body = words(text)
    both = f"{title}. {text}"
    return Analysis(
        url=article_url(item, article),
        title=title,
        text=text,
        title_tokens=as_tokens(*title_columns),
        title_words=title_words,
        text_tokens=as_tokens(*text_columns),
        words=body,
        shingles=shingle_hashes(body or words(item.title)),
        counts=features(title_words, body),
        names=names(both),
        figures=figures(both),
        wires=credited(text),
    )
