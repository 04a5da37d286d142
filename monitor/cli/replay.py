"""`monitor replay`: local feed files through the pipeline, once."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitor import log
from monitor.cli.output import Command, counted, item_json, print_table, terminal_width
from monitor.cli.progress import Progress
from monitor.config import Settings
from monitor.errors import FeedError
from monitor.pipeline import runtime


def register(commands: Any, command: Command) -> None:
    p = command(commands, "replay", "process local feed files once (default sample_feeds/)")
    p.add_argument("paths", nargs="*", type=Path, default=[Path("sample_feeds")], metavar="PATH")
    p.add_argument("--json", action="store_true", help="one JSON object per item, then a summary")
    p.add_argument("--fresh", action="store_true", help="start from empty state (deletes it)")
    p.add_argument("--rules", type=Path, help="rules directory (default rules/)")
    p.add_argument(
        "--as-of",
        metavar="TIME",
        type=_as_of,
        help="replay as if polled at TIME (ISO 8601, or 'now'); default: when each file was "
        "written (its build date, else its newest entry). Reports older than alerts.max_age "
        "at that time raise no alert",
    )
    p.set_defaults(run=cmd_replay)


def _as_of(text: str) -> datetime:
    if text.strip().lower() == "now":
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 time or 'now', got {text!r}"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from monitor.ingest.fetch import LocalFetcher
    from monitor.pipeline.replay import Summary, feed_files, read_feeds, replay
    from monitor.rules import load_rules

    rules = load_rules(settings.rules_dir)
    unreadable: list[FeedError] = []  # one bad file among many: the others are replayed
    files = feed_files(args.paths, unreadable)
    items = read_feeds(files, as_of=args.as_of, failed=unreadable)
    summary = Summary(files=len(files) - len(unreadable), unreadable=unreadable)
    if unreadable and not items:
        _name(unreadable)
        return 2
    fetcher = LocalFetcher(*{f.parent for f in files}, max_bytes=settings.http.max_bytes)
    with runtime.redis_client(settings) as client:
        if args.fresh:
            runtime.clear(client, settings)
        pipeline = runtime.pipeline(client, settings, rules, fetcher)
        rows = []
        progress = Progress(len(items), "replay", enabled=False if args.json else None)
        done = 0
        # Ctrl-C or SIGTERM stops between two items (the one in hand is finished: what was
        # done is done and durable); a second one at once. A flag, not KeyboardInterrupt
        # alone: raised inside a library's C callback, that exception can be swallowed and
        # the replay ran on.
        stop = threading.Event()
        stopped_by: list[int] = []

        def interrupt(signum: int, frame: object) -> None:
            if stop.is_set():
                raise KeyboardInterrupt
            stopped_by.append(signum)
            stop.set()

        previous = {s: signal.signal(s, interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            # A page that cannot be read is counted in the summary, not logged per item:
            # pages off the local files are never read, and hundreds of lines would bury
            # the progress line and the table.
            with log.counted_instead("article_unavailable"):
                for item, result, error in replay(items, pipeline.process, summary):
                    done += 1
                    progress.advance()
                    if args.json:
                        line = json.dumps(item_json(item, result, error), ensure_ascii=False)
                        print(line, flush=True)
                    else:
                        rows.append((item, result, error))
                    if stop.is_set():
                        break
        except KeyboardInterrupt:
            pass
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        interrupted = stop.is_set() and done < len(items)
        progress.close()
    if args.json:
        extra = {"interrupted": True, "done": done, "of": len(items)} if interrupted else {}
        print(json.dumps({"summary": {**summary.as_dict(), **extra}}), flush=True)
    else:
        print_table(rows, summary, width=terminal_width())
        if interrupted:
            print(f"\ninterrupted: {done} of {counted(len(items), 'item')} processed")
        if not settings.redis_url:
            print(f"state: {settings.state_dir.resolve()} (embedded Redis)")
    _name(unreadable)
    if interrupted:
        return 128 + stopped_by[0]  # 130 after Ctrl-C, 143 after SIGTERM
    return 2 if unreadable else 1 if summary.errors else 0


def _name(unreadable: list[FeedError]) -> None:
    """Each file that could not be replayed, one line each, as the CLI prints errors."""
    sys.stdout.flush()
    for error in unreadable:
        print(f"monitor: error: {error}", file=sys.stderr)
