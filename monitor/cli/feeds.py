"""`monitor feeds list | import | export | remove | pause | resume | poll-now`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from monitor import log
from monitor.cli.output import Command, counted, iso_time, print_feeds
from monitor.config import Settings
from monitor.errors import MonitorError
from monitor.pipeline import runtime


def register(commands: Any, command: Command) -> None:
    p = command(commands, "feeds", "the configured feeds and their polling state")
    sub = p.add_subparsers(title="feeds commands", metavar="ACTION", required=True)
    q = command(sub, "list", "each feed: last poll, HTTP status, new items, errors, next poll")
    q.add_argument("--json", action="store_true", help="one JSON object per feed")
    q.set_defaults(run=cmd_feeds_list)
    q = command(sub, "import", "add the feeds of an OPML file (categories become tags)")
    q.add_argument("file", type=Path, help="an OPML file, as feed readers export")
    q.set_defaults(run=cmd_feeds_import)
    q = command(sub, "export", "every feed as OPML 2.0 (for Miniflux, FreshRSS, …)")
    q.add_argument("--output", "-o", type=Path, help="write to this file (default: stdout)")
    q.set_defaults(run=cmd_feeds_export)
    for name, what in (
        ("remove", "forget an imported feed and its polling state"),
        ("pause", "stop polling a feed until `resume`"),
        ("resume", "poll a paused feed again"),
        ("poll-now", "poll a feed now, from this command (a running daemon processes it)"),
    ):
        q = command(sub, name, what)
        q.add_argument("feeds", nargs="+", metavar="URL|NAME", help="feed URL, name or id")
        q.set_defaults(run=cmd_feeds_manage, action=name)


def all_feeds(settings: Settings, client) -> list:
    from monitor.ingest.registry import FeedRegistry, merged

    return merged(settings.feeds, FeedRegistry(client, runtime.Keys(settings.prefix)))


def feed_rows(settings: Settings, client) -> list[dict[str, Any]]:
    from monitor.ingest.registry import feed_rows

    return feed_rows(settings, client)


def cmd_feeds_list(args: argparse.Namespace, settings: Settings) -> int:
    with runtime.redis_client(settings) as client:
        rows = feed_rows(settings, client)
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        print_feeds(rows)
    return 0


def cmd_feeds_import(args: argparse.Namespace, settings: Settings) -> int:
    from monitor.ingest.opml import parse
    from monitor.ingest.registry import FeedRegistry

    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise MonitorError(f"{args.file}: {exc.strerror or exc}") from exc
    found = parse(data, name=str(args.file))
    with runtime.redis_client(settings) as client:
        registry = FeedRegistry(client, runtime.Keys(settings.prefix))
        added, known = registry.add(found.feeds, settings.feeds)
    print(
        f"{args.file}: {counted(len(added), 'feed')} added, {len(known)} already there, "
        f"{counted(len(found.duplicates), 'duplicate')} in the file, {len(found.invalid)} invalid"
    )
    for feed in added:
        tags = f"  [{', '.join(feed.tags)}]" if feed.tags else ""
        print(f"  + {feed.name or feed.url}  {feed.url}{tags}")
    for url in found.duplicates:
        print(f"  duplicate: {url}")
    for reason in found.invalid:
        print(f"  invalid: {reason}")
    return 0


def cmd_feeds_export(args: argparse.Namespace, settings: Settings) -> int:
    from monitor.ingest.opml import render

    with runtime.redis_client(settings) as client:
        document = render(all_feeds(settings, client))
    if args.output:
        args.output.write_bytes(document)
    else:
        sys.stdout.write(document.decode())
    return 0


def cmd_feeds_manage(args: argparse.Namespace, settings: Settings) -> int:
    """remove / pause / resume / poll-now, each for one or more feeds."""
    from monitor.ingest.registry import FeedRegistry, find, merged

    with runtime.redis_client(settings) as client:
        registry = FeedRegistry(client, runtime.Keys(settings.prefix))
        feeds = merged(settings.feeds, registry)
        chosen = [find(feeds, ref) for ref in args.feeds]  # all named, or nothing done
        failed = 0
        for feed in chosen:
            label = f"{feed.name or feed.url} ({feed.url})" if feed.name else feed.url
            if args.action == "remove":
                if feed in settings.feeds:
                    raise MonitorError(
                        f"{feed.url} is listed in {args.config}: remove it there "
                        "(or `monitor feeds pause` it)"
                    )
                registry.remove(feed)
                print(f"removed {label}")
            elif args.action == "pause":
                done = registry.pause(feed)
                print(f"paused {label}" if done else f"{label} was paused already")
            elif args.action == "resume":
                done = registry.resume(feed)
                print(f"resumed {label}" if done else f"{label} was not paused")
            elif not poll_now_and_say(settings, client, feed, feeds, label):
                failed += 1
    if args.action in ("remove", "pause", "resume"):
        print(
            "running daemons follow within daemon.rules_check "
            f"({settings.daemon.rules_check:g} s) or at once on SIGHUP"
        )
    return 1 if failed else 0


def poll_now_and_say(settings: Settings, client, feed, feeds: list, label: str) -> bool:
    """Poll the feed from this process (see `registry.poll_now`) and say what came of it,
    a failure on stderr; whether the poll succeeded. At a terminal the failure is said
    once: by that line, not also by the poller's warning."""
    from monitor.ingest.registry import poll_now

    keys = runtime.Keys(settings.prefix)
    report = poll_now(settings, client, feed, feeds, warn=not log.for_people())
    when = f"next poll {(iso_time(report.next_poll) or '-')[:19].replace('T', ' ')} UTC"
    if report.error:
        # "HTTP 404" says it all; "not a feed" after a 200 says more with its status
        status = f"HTTP {report.status}, " if report.status and report.status != 200 else ""
        why = report.error if report.error.startswith("HTTP ") else status + report.error
        print(f"polled {label}: failed, {why}; {when}", file=sys.stderr)
        return False
    daemons = any(True for _ in client.scan_iter(keys.daemon("*")))
    waiting = "a running daemon processes them" if daemons else "they wait for `monitor run`"
    print(
        f"polled {label}: HTTP {report.status or '-'}, {report.entries} entries, "
        f"{len(report.new)} new" + (f" ({waiting})" if report.new else "") + f"; {when}"
    )
    return True
