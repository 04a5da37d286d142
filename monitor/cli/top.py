"""`monitor top`: the stories most reported lately (monitor/pipeline/top.py)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from monitor.cli.output import Command
from monitor.cli.replay import _as_of
from monitor.config import Settings
from monitor.pipeline import runtime

BARS = " ▁▂▃▄▅▆▇█"


def register(commands: Any, command: Command) -> None:
    p = command(commands, "top", "the stories most reported in the last hours (report time)")
    p.add_argument("--hours", type=_hours, default=6, help="how far back (default 6)")
    p.add_argument("--rule", metavar="ID", help="only stories this rule matched")
    p.add_argument("--limit", type=_positive, default=20, help="how many (default 20)")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.add_argument(
        "--as-of",
        metavar="TIME",
        type=_as_of,
        help="now is TIME (ISO 8601, or 'now'); default: the newest report time recorded",
    )
    p.set_defaults(run=cmd_top)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError(f"expected 1 to 10000, got {value}")
    return value


def _hours(text: str) -> int:
    value = _positive(text)
    if value > 24 * 30:
        raise argparse.ArgumentTypeError(f"expected at most 720 hours, got {value}")
    return value


def sparkline(counts: list[int]) -> str:
    """Reports per hour as bars, scaled to the busiest hour."""
    top = max(counts, default=0)
    if not top:
        return " " * len(counts)
    return "".join(BARS[0 if not n else max(1, round(n / top * (len(BARS) - 1)))] for n in counts)


def cmd_top(args: argparse.Namespace, settings: Settings) -> int:
    from monitor.pipeline.top import top_stories

    with runtime.redis_client(settings) as client:
        found = top_stories(
            client,
            runtime.Keys(settings.prefix),
            hours=args.hours,
            limit=args.limit,
            rule=args.rule,
            as_of=args.as_of,
        )
    if args.json:
        print(json.dumps(found.as_dict(), ensure_ascii=False))
        return 0
    if found.now is None:
        print("No reports recorded yet.")
        return 0
    print(f"Top stories of the {found.hours} h up to {found.now:%Y-%m-%d %H:%M} UTC")
    if not found.stories:
        print("  none")
    for rank, story in enumerate(found.stories, 1):
        last = f"{story.last:%m-%d %H:%M}" if story.last else "?"
        print(
            f"{rank:>3}. {len(story.recent_sources):>3} src {story.size:>4} rep  last {last}  "
            f"|{sparkline(story.per_hour)}|  {story.title or story.id}"
        )
    return 0
