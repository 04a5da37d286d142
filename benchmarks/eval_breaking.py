"""The outside check of breaking stories: the giveme5w1h dev set as one RSS feed, its reports
re-timed — every event spread evenly over 72 hours, except one (default g5-70, a North
Korean missile launch) whose reports mostly arrive within 45 minutes — replayed through
`monitor replay --json` with one rule (`breaking: true`) matching that event and three other
events on the same topic (North Korea). Then `monitor consume` gives the alerts and
`monitor top --hours 24 --json` the top stories.

Passes when exactly the bursting event raises `breaking`, during its burst, and `monitor top`
puts it first. Prints the alerts raised per kind and event, and each `breaking` alert's
window counts and baseline.

    python benchmarks/eval_breaking.py [--burst g5-70] [--code DIR]

The data stays in ../shared/data (read at run time); the feed is written to a temporary
directory.
"""

from __future__ import annotations

import argparse
import email.utils
import json
import os
import random
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path

from _support import ROOT, report
from corpora import Report, load

END = datetime(2026, 11, 30, tzinfo=UTC)
START = END - timedelta(hours=72)
BURST_AT = START + timedelta(hours=62)  # inside the last 24 h and alerts.max_age (48 h)
BURST = timedelta(minutes=45)
SPREAD_OF_BURSTING = 3  # reports of the bursting event that come before, spread out
RULE = """id: north-korea
name: North Korea
severity: high
query: '"North Korea" OR DPRK OR Pyongyang OR "Kim Jong Un" OR "Kim Jong-un"'
breaking: true
"""


def retimed(reports: list[Report], bursting: str, seed: int = 5) -> list[Report]:
    """Each event's reports spread evenly over the 72 hours (an offset of its own), but
    the bursting event's: SPREAD_OF_BURSTING before the burst, the rest within BURST."""
    rng = random.Random(seed)
    events: dict[str, list[Report]] = defaultdict(list)
    for r in sorted(reports, key=lambda r: r.key):
        events[r.story].append(r)
    out = []
    for event, members in sorted(events.items()):
        if event == bursting:
            early, late = members[:SPREAD_OF_BURSTING], members[SPREAD_OF_BURSTING:]
            gap = (BURST_AT - START) / (len(early) + 1)
            out += [replace(r, time=START + gap * (i + 1)) for i, r in enumerate(early)]
            step = BURST / max(1, len(late) - 1)
            out += [replace(r, time=BURST_AT + step * i) for i, r in enumerate(late)]
            continue
        gap = timedelta(hours=72) / len(members)
        offset = gap * rng.random()
        out += [replace(r, time=START + offset + gap * i) for i, r in enumerate(members)]
    return out


def feed(reports: list[Report]) -> str:
    """RSS 2.0, newest first; each report's outlet as its item's <source>."""
    items = []
    for r in sorted(reports, key=lambda r: r.time or END, reverse=True):
        assert r.time is not None
        items.append(
            f"<item><guid>urn:eval:{escape(r.key)}</guid><title>{escape(r.title)}</title>"
            f"<link>https://{escape(r.source)}/{escape(r.key)}</link>"
            f'<source url="https://{escape(r.source)}/">{escape(r.source)}</source>'
            f"<pubDate>{email.utils.format_datetime(r.time)}</pubDate>"
            f"<content:encoded>{escape(r.text)}</content:encoded></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        "<channel><title>eval</title>" + "".join(items) + "</channel></rss>"
    )


def monitor(code: Path, work: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env["PYTHONPATH"] = str(code)
    done = subprocess.run(
        [sys.executable, "-m", "monitor", *args, "--state-dir", str(work / "state")],
        cwd=work, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"monitor {args[0]} failed: {done.stderr[-2000:]}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--burst", default="g5-70", help="the event that bursts")
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout to run")
    args = parser.parse_args()
    reports = retimed(load("giveme5w1h"), args.burst)
    gold = {r.key: r.story for r in reports}
    times = {r.key: r.time for r in reports}
    code = args.code.resolve()
    with tempfile.TemporaryDirectory(prefix="monitor-eval-") as name:
        work = Path(name)
        (work / "feed.xml").write_text(feed(reports), encoding="utf-8")
        (work / "rules").mkdir()
        (work / "rules" / "north-korea.yaml").write_text(RULE)
        rows = [
            json.loads(line)
            for line in monitor(
                code, work, "replay", "--json", "--fresh", "--rules", "rules", "feed.xml"
            ).splitlines()
        ]
        alerts = [
            json.loads(line)
            for line in monitor(code, work, "consume", "--from-start", "--json").splitlines()
        ]
        top = json.loads(monitor(code, work, "top", "--hours", "24", "--json"))
    members: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        if "guid" in row:
            members[row["story_id"]][gold[row["guid"].removeprefix("urn:eval:")]] += 1

    def event_of(story: str) -> str:
        return members[story].most_common(1)[0][0] if members[story] else "?"

    topical = {row["story_id"] for row in rows if row.get("rules")}
    stories = sorted(
        (dict(members[s].most_common()) for s in topical), key=lambda m: -sum(m.values())
    )
    matched = Counter(
        gold[row["guid"].removeprefix("urn:eval:")] for row in rows if row.get("rules")
    )
    kinds = Counter((a["kind"], event_of(a["story"]["id"])) for a in alerts)
    breaking = []
    for a in alerts:
        if a["kind"] != "breaking":
            continue
        key = a["item"]["guid"].removeprefix("urn:eval:")
        when = times[key]
        assert when is not None
        breaking.append(
            {
                "event": event_of(a["story"]["id"]),
                "at": when.isoformat(),
                "minutes_into_burst": round((when - BURST_AT).total_seconds() / 60, 1),
                **a["breaking"],
            }
        )
    first = top["stories"][0] if top["stories"] else None
    passed = (
        len(breaking) == 1
        and breaking[0]["event"] == args.burst
        and 0 <= breaking[0]["minutes_into_burst"] <= BURST.total_seconds() / 60
        and first is not None
        and event_of(first["id"]) == args.burst
    )
    report(
        "eval_breaking",
        corpus="giveme5w1h",
        reports=len(reports),
        events=len({r.story for r in reports}),
        bursting=args.burst,
        burst=f"{BURST_AT.isoformat()} + 45 min",
        matched_reports_per_event=dict(matched.most_common()),
        stories_of_the_topic=stories,  # each story the rule matched: its reports per event
        alerts={f"{k}:{e}": n for (k, e), n in sorted(kinds.items())},
        breaking=breaking,
        top_now=top["now"],
        top_first={
            "event": event_of(first["id"]) if first else None,
            "title": first["title"] if first else None,
            "recent_sources": len(first["recent_sources"]) if first else 0,
            "per_hour_last_12": first["per_hour"][-12:] if first else [],
        },
        top_next=[
            {"event": event_of(s["id"]), "recent_sources": len(s["recent_sources"])}
            for s in top["stories"][1:4]
        ],
        passed=passed,
    )
    if not passed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
