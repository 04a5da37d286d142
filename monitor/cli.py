"""The `monitor` command."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
import structlog

from monitor import __version__, log, runtime
from monitor.config import Settings, load
from monitor.consumer import AlertConsumer, dead_letters
from monitor.errors import MonitorError, RedisUnavailable
from monitor.fetch import LocalFetcher
from monitor.pipeline import Processed
from monitor.progress import Progress
from monitor.replay import Summary, feed_files, read_feeds, replay
from monitor.rules import Document, load_rules
from monitor.rules.match import evaluate, explain
from monitor.rules.query import And


def _command_position(argv: list[str]) -> int | None:
    """Where the command's name is: the first argument that is neither a global option
    nor the value of one."""
    valued = {"--config", "--redis", "--state-dir", "--log-level"}
    n = 0
    while n < len(argv):
        arg = argv[n]
        if arg in valued:
            n += 2
        elif arg.startswith("-"):
            n += 1
        else:
            return n
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    passed: list[str] = []
    command = _command_position(argv)
    if command is not None and argv[command] == "redis-cli":
        # everything after it belongs to redis-cli, options included
        argv, passed = argv[: command + 1], argv[command + 1 :]
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    args.passed = passed
    try:
        settings = load(
            args.config,
            redis_url=args.redis,
            rules_dir=getattr(args, "rules", None),
            log_level=args.log_level,
            state_dir=args.state_dir,
        )
        log.configure(settings.log_level or args.default_log_level)
        return int(args.run(args, settings) or 0)
    except MonitorError as exc:
        print(f"monitor: error: {exc}", file=sys.stderr)
        return 2
    except redis.RedisError as exc:
        print(f"monitor: error: Redis: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `monitor ... | head`
        sys.stderr.close()
        return 0


def _global_options(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    """The options every command takes, before or after its name. Below the top level
    their default is "absent", so that one given before the command is kept."""
    default = None if top else argparse.SUPPRESS
    parser.add_argument("--config", type=Path, default=default, metavar="FILE",
                        help="monitor.toml (default: none)")  # fmt: skip
    parser.add_argument(
        "--redis", default=default, metavar="URL",
        help="Redis URL (default: MONITOR_REDIS_URL, else the embedded server)",
    )  # fmt: skip
    parser.add_argument(
        "--state-dir", type=Path, default=default, metavar="DIR",
        help="the embedded server's data (default: .monitor/ beside --config, else here)",
    )  # fmt: skip
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"),
                        default=default)  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monitor", description="Watch news feeds; one alert per story that matches a rule."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _global_options(parser, top=True)
    parser.set_defaults(default_log_level="warning")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    def command(group: Any, name: str, help: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = group.add_parser(name, help=help)
        _global_options(sub)
        return sub

    p = command(commands, "run", "the daemon: poll the configured feeds, process, alert")
    p.add_argument("--rules", type=Path, help="rules directory (default rules/)")
    p.set_defaults(run=cmd_run, default_log_level="info")

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

    p = command(commands, "status", "streams, daemons and feeds at a glance")
    p.set_defaults(run=cmd_status)

    p = command(commands, "web", "the desk: a web page over stories, alerts, feeds and rules")
    p.add_argument("--listen", metavar="HOST:PORT", help="default web.listen (127.0.0.1:8080)")
    p.add_argument("--rules", type=Path, help="rules directory (default rules/)")
    p.set_defaults(run=cmd_web, default_log_level="info")

    p = command(commands, "replay", "process local feed files once (default sample_feeds/)")
    p.add_argument("paths", nargs="*", type=Path, default=[Path("sample_feeds")], metavar="PATH")
    p.add_argument("--json", action="store_true", help="one JSON object per item, then a summary")
    p.add_argument("--fresh", action="store_true", help="start from empty state (deletes it)")
    p.add_argument("--rules", type=Path, help="rules directory (default rules/)")
    p.add_argument(
        "--as-of", metavar="TIME", type=_as_of,
        help="replay as if polled at TIME (ISO 8601, or 'now'); default: when each file was "
        "written (its build date, else its newest entry). Reports older than alerts.max_age "
        "at that time raise no alert",
    )  # fmt: skip
    p.set_defaults(run=cmd_replay)

    def group_options(p: argparse.ArgumentParser, default_group: str | None) -> None:
        p.add_argument(
            "--group",
            default=default_group,
            help="read as a member of this consumer group (at-least-once, acks)",
        )
        p.add_argument("--consumer", help="member name within the group (default: host-pid)")
        p.add_argument(
            "--claim-idle",
            type=float,
            default=60.0,
            metavar="SECONDS",
            help="re-claim alerts another member left pending this long (default 60)",
        )
        p.add_argument(
            "--max-deliveries",
            type=int,
            default=5,
            metavar="N",
            help="then move an alert to monitor:alerts:dead (default 5)",
        )
        p.add_argument("--follow", action="store_true", help="keep waiting for new alerts")
        p.add_argument("--count", type=int, help="stop after N alerts")

    p = command(commands, "consume", "read published alerts")
    group_options(p, None)
    p.add_argument("--from-start", action="store_true",
                   help="without --group: start at the oldest retained alert")  # fmt: skip
    p.add_argument("--json", action="store_true", help="one alert JSON document per line")
    p.add_argument("--dead", action="store_true", help="list the dead-lettered alerts")
    p.add_argument(
        "--requeue", nargs="*", metavar="ID",
        help="put these dead letters (entry or alert ids) back for their group (--group: "
        "only that group's); with --all, every one",
    )  # fmt: skip
    p.add_argument("--all", action="store_true", help="with --requeue: every dead letter")
    p.set_defaults(run=cmd_consume)

    p = command(
        commands, "forward", "deliver alerts to the [[sinks]] of monitor.toml (or a webhook)"
    )
    p.add_argument("--sink", action="append", metavar="NAME",
                   help="only this sink (repeatable; default: every configured sink)")  # fmt: skip
    p.add_argument("--dry-run", action="store_true",
                   help="print what each sink would send now; send and ack nothing")  # fmt: skip
    p.add_argument(
        "--listen", metavar="HOST:PORT",
        help="serve the sinks' Prometheus metrics at http://HOST:PORT/metrics",
    )  # fmt: skip
    p.add_argument(
        "--webhook", metavar="URL",
        help="instead of the sinks: POST each alert to this URL (group webhook); the options "
        "below are for it",
    )  # fmt: skip
    # The delivery options below are for --webhook; a sink has its own in monitor.toml.
    p.add_argument("--secret", help="HMAC-SHA256 key (default: MONITOR_WEBHOOK_SECRET)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default 10)")
    p.add_argument("--attempts", type=int, default=4, help="tries per delivery (default 4)")
    p.add_argument(
        "--trip-after", type=int, default=5, metavar="N",
        help="pause the endpoint after N failed deliveries in a row (default 5)",
    )  # fmt: skip
    p.add_argument(
        "--pause", type=float, default=30.0, metavar="SECONDS",
        help="first pause of a failing endpoint; doubles up to 15 min (default 30)",
    )  # fmt: skip
    group_options(p, None)
    p.set_defaults(run=cmd_forward)

    p = command(commands, "rules", "check or test rule files")
    sub = p.add_subparsers(title="rules commands", metavar="ACTION", required=True)
    q = command(sub, "check", "validate every rule; errors name file, line and column")
    q.add_argument("dir", nargs="?", type=Path, help="rules directory (default rules/)")
    q.set_defaults(run=cmd_rules_check)
    q = command(sub, "test", "run each rule's own examples")
    q.add_argument("dir", nargs="?", type=Path, help="rules directory (default rules/)")
    q.set_defaults(run=cmd_rules_test)
    q = command(sub, "explain", "whether a rule matches a text, and why")
    q.add_argument("rule", help="rule id")
    given = q.add_mutually_exclusive_group(required=True)
    given.add_argument("--text", help="the article text")
    given.add_argument("--file", type=Path, help="a file with the article text (- for stdin)")
    given.add_argument("--url-from-replay", metavar="GUID", help="an item of the replay feeds")
    q.add_argument("--title", default="", help="the title, with --text or --file")
    q.add_argument("--feeds", type=Path, default=Path("sample_feeds"),
                   help="where --url-from-replay looks (default sample_feeds/)")  # fmt: skip
    q.add_argument("--rules", type=Path, help="rules directory (default rules/)")
    q.set_defaults(run=cmd_rules_explain)
    q = command(sub, "backfill", "run a rule over the retained items of the past")
    q.add_argument("rule", help="rule id")
    q.add_argument("--since", default="3d", help="how far back: 90m, 12h, 3d, 2w (default 3d)")
    q.add_argument("--dry-run", action="store_true", help="print what would match; publish nothing")
    q.add_argument("--json", action="store_true", help="one JSON object per story, then a summary")
    q.add_argument("--rules", type=Path, help="rules directory (default rules/)")
    q.set_defaults(run=cmd_rules_backfill)

    p = command(commands, "redis-cli", "redis-cli against the configured (or embedded) Redis")
    p.set_defaults(run=cmd_redis_cli)
    return parser


# --- run, feeds, status ---------------------------------------------------------------


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from monitor.daemon import Daemon  # the daemon's imports are not needed by the rest

    stopping = threading.Event()  # a signal while Redis is awaited: give up, cleanly
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    try:
        with runtime.redis_client(settings, wait=stopping) as client:
            daemon = Daemon(settings, client)
            if not daemon.feeds:
                raise MonitorError(
                    "no feeds: add [[feeds]] to the file given with --config, "
                    "or import some with `monitor feeds import FILE.opml`"
                )
            code = daemon.run()
    except RedisUnavailable:
        if not stopping.is_set():
            raise
        code = 0
    # Poll and page threads may still sit in a network read (bounded by the timeouts, but
    # long): everything durable is done, so do not let interpreter shutdown join them.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _feeds(settings: Settings, client) -> list:
    from monitor.registry import FeedRegistry, merged

    return merged(settings.feeds, FeedRegistry(client, runtime.Keys(settings.prefix)))


def _feed_rows(settings: Settings, client) -> list[dict[str, Any]]:
    from monitor.registry import feed_rows

    return feed_rows(settings, client)


def _when(ts: float) -> str | None:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds") if ts else None


def _print_feeds(rows: list[dict[str, Any]]) -> None:
    header = ("feed", "last poll (UTC)", "status", "new", "errors", "next poll (UTC)", "url")
    lines = [header]
    for r in rows:
        lines.append(
            (
                _clip(r["name"] or r["id"], 24),
                (r["last_poll"] or "never")[:19].replace("T", " "),
                "paused" if r["paused"] else str(r["status"] or "-"),
                str(r["new"]),
                str(r["errors"]) + (f" ({_clip(r['last_error'], 30)})" if r["last_error"] else ""),
                (r["next_poll"] or "-")[:19].replace("T", " "),
                r["url"],
            )
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(header) - 1)]
    for row in lines:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])


def cmd_feeds_list(args: argparse.Namespace, settings: Settings) -> int:
    with runtime.redis_client(settings) as client:
        rows = _feed_rows(settings, client)
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        _print_feeds(rows)
    return 0


def cmd_feeds_import(args: argparse.Namespace, settings: Settings) -> int:
    from monitor.opml import parse
    from monitor.registry import FeedRegistry

    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise MonitorError(f"{args.file}: {exc.strerror or exc}") from exc
    found = parse(data, name=str(args.file))
    with runtime.redis_client(settings) as client:
        registry = FeedRegistry(client, runtime.Keys(settings.prefix))
        added, known = registry.add(found.feeds, settings.feeds)
    print(
        f"{args.file}: {len(added)} feeds added, {len(known)} already there, "
        f"{len(found.duplicates)} duplicates in the file, {len(found.invalid)} invalid"
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
    from monitor.opml import render

    with runtime.redis_client(settings) as client:
        document = render(_feeds(settings, client))
    if args.output:
        args.output.write_bytes(document)
    else:
        sys.stdout.write(document.decode())
    return 0


def cmd_feeds_manage(args: argparse.Namespace, settings: Settings) -> int:
    """remove / pause / resume / poll-now, each for one or more feeds."""
    from monitor.registry import FeedRegistry, find, merged

    with runtime.redis_client(settings) as client:
        registry = FeedRegistry(client, runtime.Keys(settings.prefix))
        feeds = merged(settings.feeds, registry)
        chosen = [find(feeds, ref) for ref in args.feeds]  # all named, or nothing done
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
            else:
                _poll_now(settings, client, feed, feeds, label)
    if args.action in ("remove", "pause", "resume"):
        print(
            "running daemons follow within daemon.rules_check "
            f"({settings.daemon.rules_check:g} s) or at once on SIGHUP"
        )
    return 0


def _poll_now(settings: Settings, client, feed, feeds: list, label: str) -> None:
    """Poll the feed from this process (see `registry.poll_now`) and say what came of it."""
    from monitor.registry import poll_now

    keys = runtime.Keys(settings.prefix)
    report = poll_now(settings, client, feed, feeds)
    daemons = any(True for _ in client.scan_iter(keys.daemon("*")))
    outcome = f"error: {report.error}" if report.error else f"{len(report.new)} new"
    waiting = "a running daemon processes them" if daemons else "they wait for `monitor run`"
    print(
        f"polled {label}: HTTP {report.status or '-'}, {report.entries} entries, {outcome}"
        + (f" ({waiting})" if report.new else "")
        + f"; next poll {(_when(report.next_poll) or '-')[:19].replace('T', ' ')} UTC"
    )


def cmd_web(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from monitor.web import bind, create_app

    listen = args.listen or settings.web.listen
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise MonitorError(f"--listen: expected HOST:PORT, got {listen!r}")
    rules = load_rules(settings.rules_dir)
    with runtime.redis_client(settings) as client:
        app = create_app(settings, client, rules)
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
        server = uvicorn.Server(config)
        try:
            sock = bind(host.strip("[]"), int(port))
        except OSError as exc:
            raise MonitorError(
                f"cannot listen on {listen} ({exc.strerror}): set web.listen or --listen"
            ) from None
        sockets = [sock]
        where = sockets[0].getsockname()
        structlog.get_logger(__name__).info(
            "web_listening", address=f"{where[0]}:{where[1]}", writable=bool(settings.web.token)
        )
        print(f"the desk: http://{where[0]}:{where[1]}/", file=sys.stderr, flush=True)
        server.run(sockets=sockets)
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from monitor.queue import ItemsQueue
    from monitor.redisguard import eviction_settings
    from monitor.retention import stream_groups

    keys = runtime.Keys(settings.prefix)
    with runtime.redis_client(settings, check=False) as client:  # status shows, not refuses
        policy = eviction_settings(client)
        groups = stream_groups(client, settings)
        daemons = [json.loads(client.get(k) or "{}") for k in client.scan_iter(keys.daemon("*"))]
        lag, pending = ItemsQueue(client, keys, maxlen=1).lag()
        alerts = client.xlen(keys.alerts) if client.exists(keys.alerts) else 0
        dead = client.xlen(keys.items_dead) if client.exists(keys.items_dead) else 0
        dead_alerts = client.xlen(keys.alerts_dead) if client.exists(keys.alerts_dead) else 0
        rows = _feed_rows(settings, client)
        indexed = runtime.dedup_index(client, settings).originals()
        sinks = [_sink_status(client, sink, settings.prefix) for sink in settings.sinks]
        try:
            memory: int | None = client.info("memory")["used_memory"]
        except redis.ResponseError:  # an ACL user without @dangerous may not run INFO
            memory = None
    print(f"redis: {runtime.describe_redis(settings)}")
    print(
        f"daemons running: {len(daemons)}"
        + "".join(
            f"\n  {d.get('instance')} (pid {d.get('pid')}"
            + (f", listening on {d['listen']}" if d.get("listen") else "")
            + f", {_n(d['feeds'], 'feed') if 'feeds' in d else '? feeds'})"
            for d in daemons
        )
    )
    print(
        f"items: {lag} waiting, {pending} in progress, {dead} dead-lettered; alerts: {alerts}"
        + (f", {dead_alerts} dead-lettered (monitor consume --dead)" if dead_alerts else "")
    )
    if sinks:
        print(f"sinks: {len(sinks)}" + "".join(f"\n  {line}" for line in sinks))
    line = f"dedup window ({settings.story_window_hours:g} h): {indexed} items indexed"
    if memory is not None:
        line += f"; Redis memory {memory / 2**20:.1f} MB"
        line += (
            f" (~{memory / indexed / 1024:.1f} KB per item, streams included)" if indexed else ""
        )
    print(line)
    print(f"Redis maxmemory-policy: {policy[0]}" if isinstance(policy, tuple) else policy)
    for group in groups:
        print(f"{group.stream.removeprefix(settings.prefix)} group {group.group}: "
              f"{group.describe()}")  # fmt: skip
    failing = [r for r in rows if r["errors"]]
    imported = sum(1 for r in rows if not r["configured"])
    print(
        f"feeds: {len(rows)} ({len(rows) - imported} configured, {imported} imported), "
        f"{sum(1 for r in rows if r['paused'])} paused, {len(failing)} failing"
        + (" (all: monitor feeds list)" if rows else "")
    )
    if failing:
        print()
        _print_feeds(failing)
    return 0


def _sink_status(client, sink, prefix: str) -> str:
    from monitor.sinks.overview import status

    return status(client, sink, prefix)


# --- replay ---------------------------------------------------------------------------


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
    rules = load_rules(settings.rules_dir)
    files = feed_files(args.paths)
    items = read_feeds(files, as_of=args.as_of)
    fetcher = LocalFetcher(*{f.parent for f in files}, max_bytes=settings.http.max_bytes)
    summary = Summary()
    with runtime.redis_client(settings) as client:
        if args.fresh:
            runtime.clear(client, settings)
        pipeline = runtime.pipeline(client, settings, rules, fetcher)
        rows = []
        progress = Progress(len(items), "replay", enabled=False if args.json else None)
        interrupted = False
        done = 0
        try:
            for item, result, error in replay(items, pipeline.process, summary):
                done += 1
                progress.advance()
                if args.json:
                    line = json.dumps(_item_json(item, result, error), ensure_ascii=False)
                    print(line, flush=True)
                else:
                    rows.append((item, result, error))
        except KeyboardInterrupt:  # Ctrl-C: what was done is done (and durable); say what
            interrupted = True
        progress.close()
    if args.json:
        extra = {"interrupted": True, "done": done, "of": len(items)} if interrupted else {}
        print(json.dumps({"summary": {**summary.as_dict(), **extra}}))
    else:
        _print_table(rows, summary)
        if interrupted:
            print(f"\ninterrupted: {done} of {_n(len(items), 'item')} processed")
        if not settings.redis_url:
            print(f"state: {settings.state_dir.resolve()} (embedded Redis)")
    if interrupted:
        return 130
    return 1 if summary.errors else 0


def _item_json(item, result: Processed | None, error: str) -> dict[str, Any]:
    if result is None:
        return {
            "id": item.id,
            "guid": item.guid,
            "url": item.url,
            "title": item.title,
            "source": item.source,
            "error": error,
        }
    p = result.placement
    return {
        "id": item.id,
        "guid": item.guid,
        "url": result.url,
        "title": item.title or result.article.title,
        "source": item.source,
        "published": item.published.isoformat() if item.published else None,
        "first_seen": item.first_seen.isoformat() if item.first_seen else None,
        "language": result.article.language or None,
        "story_id": p.story_id,
        "duplicate_of": p.duplicate_of,
        "dedup": str(p.outcome),
        "similarity": round(p.similarity, 3),
        "rules": [m.rule_id for m in result.matches],
        "alerts": result.alerts,
        "alert_suppressed": result.alert_suppressed or None,
        "wires": list(result.wires),
        "text_from": result.article.text_from,
        "warnings": result.warnings,
    }


def _print_table(rows, summary: Summary) -> None:
    header = ("#", "source", "dedup", "story", "rules", "alerts", "title")
    lines = [header]
    for n, (item, result, error) in enumerate(rows, 1):
        if result is None:
            lines.append((str(n), item.source, "ERROR", "-", "-", "-", error))
            continue
        lines.append(
            (
                str(n),
                item.source,
                str(result.placement.outcome),
                result.placement.story_id[:8],
                ",".join(m.rule_id for m in result.matches) or "-",
                str(len(result.alerts))
                + (
                    " (old)"
                    if result.matches and result.alert_suppressed.startswith("older")
                    else " (undated)"
                    if result.matches and result.alert_suppressed
                    else ""
                ),
                _clip(item.title or result.article.title, 48),
            )
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(header) - 1)]
    for row in lines:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])
    s = summary.as_dict()
    print()
    print(
        f"{_n(s['items'], 'item')}, {_n(s['stories'], 'story', 'stories')} "
        f"({s['new_stories']} new), "
        f"{s['near_duplicates']} near-duplicates, "
        f"{s['same_items'] + s['seen_before']} already seen, "
        f"{_n(s['alerts_published'], 'alert')} published, {_n(s['errors'], 'error')}"
    )
    for reason, count in s["alerts_suppressed"].items():
        print(f"no alert for {_n(count, 'matching report')}: {reason}")
    if s["rules_matched"]:
        width = max(len(r) for r in s["rules_matched"])
        print(f"\n  {'rule'.ljust(width)}  matched  alerts")
        for rule_id, count in s["rules_matched"].items():
            alerts = s["alerts_per_rule"].get(rule_id, 0)
            print(f"  {rule_id.ljust(width)}  {count:>7}  {alerts:>6}")
    print("\nRead the alerts with: monitor consume --from-start")


def _n(count: int, one: str, many: str = "") -> str:
    return f"{count} {one if count == 1 else many or one + 's'}"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# --- consume --------------------------------------------------------------------------


def cmd_consume(args: argparse.Namespace, settings: Settings) -> int:
    if args.consumer and not args.group:
        raise MonitorError("--consumer needs --group")
    if args.count is not None and args.count < 1:
        raise MonitorError("--count must be at least 1")
    if args.all and args.requeue is None:
        raise MonitorError("--all goes with --requeue")
    if args.requeue is not None and bool(args.requeue) == args.all:
        raise MonitorError("--requeue needs dead-letter ids, or --all (not both)")
    signal.signal(signal.SIGTERM, _interrupt)
    shown = 0
    with runtime.redis_client(settings) as client:
        if args.requeue is not None:
            return _requeue(args, settings, client)
        if args.dead:
            for letter in dead_letters(client, settings.prefix):
                _print_dead(letter, args.json)
                shown += 1
            _say_if_none(shown, args, "no alerts in the dead letters")
            return 0
        try:
            if args.group:
                shown = _consume_group(args, settings, client)
            else:
                shown = _consume_plain(args, settings, client)
        except KeyboardInterrupt:
            pass  # Ctrl-C or SIGTERM ends --follow cleanly; unacked alerts stay pending
    return 0


def _say_if_none(shown: int | bool, args: argparse.Namespace, message: str) -> None:
    """An empty answer says so to a person at a terminal; scripts (--json, pipes) get
    nothing to parse around."""
    if not shown and not args.json and sys.stdout.isatty():
        print(message)


def _requeue(args: argparse.Namespace, settings: Settings, client) -> int:
    from monitor.consumer import requeue

    moved = requeue(
        client, settings.prefix, ids=None if args.all else args.requeue, group=args.group
    )
    for letter in moved:
        print(f"{letter['entry']}  {letter.get('id', '-')}  back for group {letter['group']}")
    groups = sorted({letter["group"] for letter in moved})
    print(
        f"{_n(len(moved), 'dead letter')} requeued"
        + (f"; read them with: monitor consume --group {groups[0]}" if len(groups) == 1 else "")
    )
    return 0


def _consumer(args: argparse.Namespace, settings: Settings, client) -> AlertConsumer:
    return AlertConsumer(
        client, group=args.group, consumer=args.consumer or "", prefix=settings.prefix,
        claim_idle=args.claim_idle, max_deliveries=args.max_deliveries,
    )  # fmt: skip


def _consume_group(args: argparse.Namespace, settings: Settings, client) -> int:
    consumer = _consumer(args, settings, client)
    source = consumer.follow() if args.follow else consumer.drain()
    shown = 0
    for shown, delivery in enumerate(source, 1):
        _print_alert(delivery.value or {}, args.json)
        consumer.ack(delivery)  # at-least-once: acked once handled (printed)
        if args.count is not None and shown >= args.count:
            break
    _say_if_none(shown, args, f"no alerts for group {args.group}")
    return shown


def _consume_plain(args: argparse.Namespace, settings: Settings, client) -> int:
    queue = runtime.alert_queue(client, settings)
    position = "-" if args.from_start else "(" + queue.last_id()
    shown = 0
    waiting = False
    while args.count is None or shown < args.count:
        want = 100 if args.count is None else min(100, args.count - shown)
        batch = list(queue.read(start=position, count=want))
        for delivered in batch:
            _print_alert(delivered.alert, args.json)
            position = "(" + delivered.entry_id
            shown += 1
        if not batch:
            if not args.follow:
                break
            if not waiting:
                _say_if_none(shown, args, "no alerts yet: waiting for new ones (Ctrl-C ends)")
                waiting = True
            time.sleep(0.5)
    hint = "" if args.from_start else " (only new ones are shown: --from-start for all)"
    _say_if_none(shown or waiting, args, f"no alerts{hint}")
    return shown


def cmd_forward(args: argparse.Namespace, settings: Settings) -> int:
    if not args.webhook:
        return _forward_sinks(args, settings)
    if args.dry_run or args.sink or args.listen:
        raise MonitorError("--dry-run, --sink and --listen go with the sinks, not --webhook")
    from monitor.forward import Forwarder

    args.group = args.group or "webhook"
    secret = args.secret or settings.webhook_secret
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with runtime.redis_client(settings) as client:
        forwarder = Forwarder(
            _consumer(args, settings, client), args.webhook, secret=secret,
            timeout=args.timeout, attempts=args.attempts, stop=stop,
            trip_after=args.trip_after, pause=args.pause,
        )  # fmt: skip
        try:
            delivered = forwarder.run(follow=args.follow, count=args.count)
        finally:
            forwarder.close()
    dead = f", {forwarder.dead} dead-lettered" if forwarder.dead else ""
    print(f"{delivered} alerts delivered to {args.webhook}{dead}", file=sys.stderr)
    return 0


def _forward_sinks(args: argparse.Namespace, settings: Settings) -> int:
    from monitor.sinks.base import build
    from monitor.sinks.overview import preview
    from monitor.sinks.runner import SinkMetrics, SinkRunner, serve

    if args.group:
        raise MonitorError("--group goes with --webhook: each sink has its group (sink:NAME)")
    given = [f"--{n.replace('_', '-')}" for n, default in _WEBHOOK_ONLY.items()
             if getattr(args, n) != default]  # fmt: skip
    if given:
        raise MonitorError(
            f"{', '.join(given)}: with --webhook only; a sink sets its own in monitor.toml"
        )
    chosen = [s for s in settings.sinks if not args.sink or s.name in args.sink]
    missing = sorted(set(args.sink or ()) - {s.name for s in settings.sinks})
    if missing or not chosen:
        known = ", ".join(s.name for s in settings.sinks) or "none configured"
        if missing:
            raise MonitorError(f"no sink {', '.join(missing)} (sinks: {known})")
        raise MonitorError(
            "no sinks: add [[sinks]] to monitor.toml (docs/consumers.md) or give --webhook URL"
        )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    sinks = [build(config) for config in chosen]
    metrics = SinkMetrics()
    if args.listen:
        from prometheus_client import start_http_server

        host, _, port = args.listen.rpartition(":")
        if not host or not port.isdigit():
            raise MonitorError(f"--listen: expected HOST:PORT, got {args.listen!r}")
        start_http_server(int(port), host, registry=metrics.registry)
    try:
        with runtime.redis_client(settings) as client:
            runners = [
                SinkRunner(
                    sink,
                    client,
                    prefix=settings.prefix,
                    consumer=args.consumer or "",
                    stop=stop,
                    metrics=metrics,
                )
                for sink in sinks
            ]
            if args.dry_run:
                for runner in runners:
                    _print_preview(runner, *preview(runner, client, settings.prefix))
                return 0
            serve(runners, follow=args.follow, count=args.count)
    finally:
        for sink in sinks:
            sink.close()
    failed = 0
    for runner in runners:
        line = f"{runner.name}: {runner.stats.line()}"
        if runner.error:
            failed += 1
            line += f"; {runner.error}"
        print(line, file=sys.stderr)
    return 2 if failed else 0


_WEBHOOK_ONLY = {"secret": None, "timeout": 10.0, "attempts": 4, "trip_after": 5, "pause": 30.0,
                 "claim_idle": 60.0, "max_deliveries": 5}  # fmt: skip


def _print_preview(runner: Any, count: int, shown: list[str]) -> None:
    config = runner.config
    mode = f", digest {config.digest.describe()}" if config.digest else ""
    print(
        f"== sink {config.name} ({config.type} {config.shown_url}{mode}; takes "
        f"{config.filter.describe()}): {_n(count, 'message')} would be sent"
        + (f" (the first {len(shown)} below)" if count > len(shown) else "")
    )
    for text in shown:
        print(text)
        print()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _print_alert(alert: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(alert, ensure_ascii=False), flush=True)
        return
    rule, item, story = alert["rule"], alert["item"], alert["story"]
    print(
        f"[{rule['severity']}] {rule['name']} — {alert['kind']} · story {story['id'][:8]} "
        f"({story['size']} item{'s' if story['size'] != 1 else ''}) · {alert['created_at']}"
    )
    print(f"  {item['source']}: {item['title']}")
    print(f"  {_dated(item.get('published'), alert['created_at'])} · {item['url']}")
    if item.get("text_from") == "summary":
        print("  (matched on the feed's summary: the page could not be fetched)")
    # one line per query term (an alias counts once), its first hit
    shown: dict[str, dict] = {}
    for m in alert["matches"]:
        shown.setdefault(m["term"].split(":", 1)[0] if m["term"].startswith("@") else m["term"], m)
    for m in shown.values():
        print(f"  {m['field']}: {m['term']} — {m['snippet']}")
    others = [s["source"] for s in story["sources"] if s["url"] != item["url"]]
    if others:
        print(f"  also reported by: {', '.join(dict.fromkeys(others))}")
    print(flush=True)


def _dated(published: str | None, alerted: str) -> str:
    """The article's own date and its age when the alert was raised."""
    if not published:
        return "undated"
    when = datetime.fromisoformat(published.replace("Z", "+00:00")).astimezone(UTC)
    age = (datetime.fromisoformat(alerted.replace("Z", "+00:00")) - when).total_seconds()
    return f"published {when:%Y-%m-%d %H:%M} UTC ({_age(age)} before the alert)"


def _age(seconds: float) -> str:
    if seconds < 0:
        return "0 min"
    for unit, size in (("years", 365 * 86400), ("days", 86400), ("h", 3600)):
        if seconds >= 2 * size or (unit == "h" and seconds >= size):
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds // 60)} min"


def _print_dead(letter: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(letter, ensure_ascii=False), flush=True)
        return
    alert = letter["alert"] if isinstance(letter["alert"], dict) else {}
    where = f"group {letter.get('group')}, consumer {letter.get('consumer', '-')}"
    print(
        f"{letter['entry']}  {where}, {letter.get('deliveries')} deliveries: {letter.get('reason')}"
    )
    if alert:
        print(f"  {alert.get('id')} {alert.get('kind')} {alert.get('rule', {}).get('id')}: "
              f"{alert.get('item', {}).get('title')}")  # fmt: skip


# --- rules ----------------------------------------------------------------------------


def cmd_rules_check(args: argparse.Namespace, settings: Settings) -> int:
    """Every problem of every file in one run: errors (exit 1) and lint warnings."""
    from monitor.rules.load import check_rules

    directory = args.dir or settings.rules_dir
    checked = check_rules(directory)
    for error in checked.errors:
        print(error, file=sys.stderr)
    for warning in checked.warnings:
        print(f"{warning} (warning)", file=sys.stderr)
    counts = f"{_n(len(checked.rules), 'rule')}, {_n(len(checked.aliases), 'alias', 'aliases')}"
    lint = f", {_n(len(checked.warnings), 'warning')}" if checked.warnings else ""
    if checked.errors:
        files = len({e.path for e in checked.errors})
        print(f"{directory}: {_n(len(checked.errors), 'error')} in {_n(files, 'file')}; "
              f"{counts} valid{lint}")  # fmt: skip
        return 1
    print(f"{directory}: {counts}, all valid{lint}")
    return 0


def cmd_rules_test(args: argparse.Namespace, settings: Settings) -> int:
    rules = load_rules(args.dir or settings.rules_dir)
    failures = 0
    for rule in rules.rules:
        for expected, examples in ((True, rule.examples_match), (False, rule.examples_no_match)):
            for text in examples:
                got = rule.match(Document(text=text)) is not None
                if got != expected:
                    failures += 1
                    want = "match" if expected else "not match"
                    print(f"FAIL {rule.id}: expected to {want}: {text!r}")
    total = sum(len(r.examples_match) + len(r.examples_no_match) for r in rules.rules)
    print(f"{total - failures} passed, {failures} failed")
    return 1 if failures else 0


def cmd_rules_explain(args: argparse.Namespace, settings: Settings) -> int:
    rules = load_rules(settings.rules_dir)
    rule = rules.get(args.rule)
    if rule is None:
        known = ", ".join(r.id for r in rules.rules)
        raise MonitorError(f"no rule {args.rule!r} in {settings.rules_dir} (rules: {known})")
    doc = _explain_document(args)
    result = rule.match(doc)
    status = f"MATCH, score {result.score}" if result else "NO MATCH"
    print(f"{rule.id} ({rule.name}): {status} (min_score {rule.min_score})")
    print(f"  query: {rule.query}")
    clauses = rule.node.nodes if isinstance(rule.node, And) else (rule.node,)
    for clause in clauses:
        spans = evaluate(clause, doc)
        print(f"  {'✓' if spans is not None else '✗'} {clause}")
        for hit in explain(spans or [], doc)[:6]:
            print(f"      {hit.field}: {hit.term} — {hit.snippet}")
    if result is None and rule.languages and doc.lang and doc.lang not in rule.languages:
        print(f"  language {doc.lang!r} is not one of {', '.join(rule.languages)}")
    return 0 if result else 1


def _explain_document(args: argparse.Namespace) -> Document:
    from monitor.extract import detect_language
    from monitor.pipeline import Pipeline

    if args.text is not None or args.file is not None:
        if args.file is not None:
            text = sys.stdin.read() if str(args.file) == "-" else _read_text(args.file)
        else:
            text = args.text
        return Document(title=args.title, text=text, lang=detect_language(text))
    files = feed_files([args.feeds])
    item = next((i for i in read_feeds(files) if args.url_from_replay in (i.guid, i.url)), None)
    if item is None:
        raise MonitorError(f"no item with GUID or URL {args.url_from_replay!r} in {args.feeds}")
    fetcher = LocalFetcher(*{f.parent for f in files})
    article, _ = Pipeline.article_of(item, fetcher)
    return Document(
        title=item.title or article.title, text=article.text, source=item.source,
        lang=article.language, url=article.canonical_url or item.url,
    )  # fmt: skip


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MonitorError(f"{path}: {exc}") from exc


def cmd_rules_backfill(args: argparse.Namespace, settings: Settings) -> int:
    from monitor import backfill
    from monitor.config import parse_duration

    rules = load_rules(settings.rules_dir)
    rule = rules.get(args.rule)
    if rule is None:
        raise MonitorError(f"no rule {args.rule!r} in {settings.rules_dir}")
    try:
        since = time.time() - parse_duration(args.since)
    except ValueError as exc:
        raise MonitorError(f"--since: {exc}") from exc
    with runtime.redis_client(settings) as client:
        pipeline = runtime.pipeline(client, settings, rules, LocalFetcher())
        assert pipeline.retained is not None
        progress = Progress(
            pipeline.retained.count(), "backfill", enabled=False if args.json else None
        )
        report = backfill.run(
            rule, pipeline.retained, pipeline, since=since, dry_run=args.dry_run,
            progress=progress.advance,
        )  # fmt: skip
        progress.close()
    summary = {
        "rule": rule.id,
        "items": report.items,
        "matched": report.matched,
        "stories": len(report.stories),
        "alerts_published": report.alerts,
        "dry_run": args.dry_run,
    }
    if args.json:
        for story in report.stories.values():
            print(json.dumps(_story_json(story), ensure_ascii=False))
        print(json.dumps({"summary": summary}))
        return 0
    for story in report.stories.values():
        _, match = story.matches[0]
        state = "already alerted live" if story.already_alerted else "no alert before"
        print(f"story {story.story_id[:8]}: {len(story.matches)} matching item(s), {state}")
        for kept, _ in story.matches:
            line = f"{kept.item.source}: {_clip(kept.item.title, 60)}  ({kept.placement.outcome})"
            print(f"  {_when(kept.processed_at)}  {line}")
        for hit in match.hits[:4]:
            print(f"    {hit.field}: {hit.term} — {hit.snippet}")
        if story.alerts:
            print(f"  published: {', '.join(story.alerts)}")
    verb = "would match" if args.dry_run else "matched"
    print(
        f"\n{rule.id}: {report.items} retained items since {args.since}, {report.matched} {verb}, "
        f"{_n(len(report.stories), 'story', 'stories')}, {_n(report.alerts, 'alert')} published"
        + (" (dry run)" if args.dry_run else "")
    )
    return 0


def _story_json(story: Any) -> dict[str, Any]:
    return {
        "story_id": story.story_id,
        "already_alerted": story.already_alerted,
        "alerts": story.alerts,
        "items": [
            {
                "guid": kept.item.guid,
                "title": kept.item.title,
                "source": kept.item.source,
                "dedup": str(kept.placement.outcome),
                "score": match.score,
                "matches": [
                    {"field": h.field, "term": h.term, "snippet": h.snippet} for h in match.hits
                ],
            }
            for kept, match in story.matches
        ],
    }


# --- redis-cli ------------------------------------------------------------------------


def cmd_redis_cli(args: argparse.Namespace, settings: Settings) -> int:
    """`redis-cli ARGS` against the Redis the other commands use (embedded: started for the
    duration and stopped after, unless another command still uses it)."""
    import subprocess
    from urllib.parse import unquote, urlsplit

    from monitor.embedded import find_redis_cli

    binary = find_redis_cli()
    with runtime.redis_url(settings) as url:
        parts = urlsplit(url)
        env = dict(os.environ)
        if parts.password:  # in the environment, not on a command line others can read (ps)
            env["REDISCLI_AUTH"] = unquote(parts.password)
        if parts.scheme == "unix":
            target = ["-s", parts.path]
            db = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p).get("db")
        else:
            target = ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379)]
            db = parts.path.strip("/")
            target += ["--tls"] if parts.scheme == "rediss" else []
        if parts.username:
            target += ["--user", unquote(parts.username)]
        target += ["-n", db] if db and db.isdigit() else []
        try:
            return subprocess.run(
                [str(binary), *target, *args.passed], check=False, env=env
            ).returncode
        except OSError as exc:
            raise MonitorError(f"cannot run {binary}: {exc}") from exc
