"""Stories through the path users take: each dev set written as an RSS feed (dated
`<pubDate>`s, the text in `<content:encoded>`) and run through `monitor replay FEED --json`
in a process of its own, oldest first and newest first (real feeds list newest first).
Prints the same pairwise and B-cubed figures as eval_dedup.py, whose in-process figures
(simulated report clock) should be the same: a gap between the two is a bug.

    python benchmarks/eval_replay.py [--corpus all] [--limit 150] [--code DIR]

`--code DIR`: run the `monitor` of another checkout (to compare two versions in one run).
"""

from __future__ import annotations

import argparse
import email.utils
import json
import os
import subprocess
import sys
import tempfile
from html import escape
from pathlib import Path

from _support import ROOT, report
from corpora import CORPORA, Report, load
from eval_dedup import pairwise


def feed(reports: list[Report], *, paragraphs: bool = False) -> str:
    """An RSS 2.0 document of the reports, in the order given. `paragraphs`: each line of a
    text as an HTML paragraph, as news feeds carry them (else the text as it is, where its
    line breaks are spaces)."""
    items = []
    for r in reports:
        date = f"<pubDate>{email.utils.format_datetime(r.time)}</pubDate>" if r.time else ""
        text = r.text
        if paragraphs:
            text = "".join(f"<p>{escape(line)}</p>" for line in text.splitlines() if line.strip())
        items.append(
            f"<item><guid>urn:eval:{escape(r.key)}</guid><title>{escape(r.title)}</title>"
            f"<link>https://{escape(r.source)}/{escape(r.key)}</link>{date}"
            f"<content:encoded>{escape(text)}</content:encoded></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        "<channel><title>eval</title>" + "".join(items) + "</channel></rss>"
    )


def replayed(reports: list[Report], code: Path, work: Path) -> dict[str, str]:
    """Report key -> the story `monitor replay` put it in."""
    rows = replayed_rows(reports, code, work)
    return {key: row["story_id"] for key, row in rows.items() if row.get("story_id")}


def replayed_rows(
    reports: list[Report], code: Path, work: Path, *, paragraphs: bool = False
) -> dict[str, dict]:
    """Report key -> its line of `monitor replay --json` (story_id, dedup, adds, ...)."""
    (work / "feed.xml").write_text(feed(reports, paragraphs=paragraphs), encoding="utf-8")
    (work / "rules").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env["PYTHONPATH"] = str(code)
    run = subprocess.run(
        [sys.executable, "-m", "monitor", "replay", "--json", "--fresh", "--rules", "rules",
         "--state-dir", str(work / "state"), "feed.xml"],
        cwd=work, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    rows = {}
    for line in run.stdout.splitlines():
        row = json.loads(line)
        if "guid" in row:
            rows[row["guid"].removeprefix("urn:eval:")] = row
    if not rows:
        raise SystemExit(f"replay gave nothing: {run.stderr[-2000:]}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", choices=[*CORPORA, "all"], default="all")
    parser.add_argument("--limit", type=int, default=150, help="first N stories only")
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout to run")
    args = parser.parse_args()
    for corpus in CORPORA if args.corpus == "all" else (args.corpus,):
        reports = load(corpus, limit=args.limit)
        for order in ("oldest first", "newest first"):
            given = reports if order == "oldest first" else reports[::-1]
            with tempfile.TemporaryDirectory(prefix="monitor-eval-") as work:
                stories = replayed(given, args.code.resolve(), Path(work))
            placed = [r for r in reports if r.key in stories]
            figures = pairwise([r.story for r in placed], [stories[r.key] for r in placed])
            report(
                "eval_replay", corpus=corpus, order=order, reports=len(placed),
                stories=len({r.story for r in placed}), **figures,
            )  # fmt: skip


if __name__ == "__main__":
    main()
