"""Build the background document frequencies the story vectors start from
(monitor/dedup/background.json), so the first decisions of an empty index do not rest on
frequencies over a handful of documents.

The source is the real-world feed fixtures in ../shared/data/feeds (miniflux, Apache-2.0;
feed-rs, MIT: news feeds from the BBC, NBC, Spiegel and others), whose licences allow
copying: every entry with at least 20 words of title, summary and content is one document.
Only the table is committed (terms in at least 2 documents, with their counts), never the
texts. `fingerprint.tfidf` (and the index's server-side copy of it) adds to each term's
window frequency its background share of PRIOR_DOCUMENTS.

    python benchmarks/build_background.py
"""

from __future__ import annotations

import json
import sys

import feedparser
from _support import ROOT, report

from monitor.dedup.fingerprint import features
from monitor.extract import html_to_text

FEEDS = ROOT.parent / "shared" / "data" / "feeds"
OUT = ROOT / "monitor" / "dedup" / "background.json"
MIN_WORDS = 20
MIN_DF = 2


def documents() -> list[str]:
    texts: dict[str, None] = {}  # ordered, without repeats (fixtures repeat entries)
    for path in sorted(FEEDS.rglob("*")):
        if not path.is_file() or path.name.startswith("LICENSE") or path.suffix == ".go":
            continue
        if path.name.endswith(".serde.json"):
            continue
        for entry in feedparser.parse(path.read_bytes()).entries:
            parts = [entry.get("title", ""), entry.get("summary", "")]
            parts += [c.get("value", "") for c in entry.get("content", [])]
            text = html_to_text(" ".join(parts))
            if len(text.split()) >= MIN_WORDS:
                texts.setdefault(text)
    return list(texts)


def main() -> int:
    if not FEEDS.exists():
        print(f"feed fixtures not found under {FEEDS}", file=sys.stderr)
        return 1
    docs = documents()
    df: dict[str, int] = {}
    for text in docs:
        for term in features("", text):
            df[term] = df.get(term, 0) + 1
    kept = {t: n for t, n in sorted(df.items(), key=lambda kv: (-kv[1], kv[0])) if n >= MIN_DF}
    OUT.write_text(
        json.dumps(
            {
                "documents": len(docs),
                "min_df": MIN_DF,
                "source": "miniflux/v2 (Apache-2.0) and feed-rs (MIT) feed fixtures",
                "df": kept,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )
        + "\n"
    )
    report("build_background", documents=len(docs), terms=len(df), kept=len(kept))
    return 0


if __name__ == "__main__":
    sys.exit(main())
