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
from pathlib import Path
from typing import Any

import redis

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


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        settings = load(
            args.config,
            redis_url=getattr(args, "redis", None),
            rules_dir=getattr(args, "rules", None),
            log_level=args.log_level,
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monitor", description="Watch news feeds; one alert per story that matches a rule."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--config", type=Path, help="monitor.toml (default: none)")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    parser.set_defaults(default_log_level="warning")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = commands.add_parser("run", help="the daemon: poll the configured feeds, process, alert")
    p.add_argument(
        "--redis", help="Redis URL (default: MONITOR_REDIS_URL, else the embedded server)"
    )
    p.add_argument("--rules", type=Path, help="rules directory (default rules/)")
    p.set_defaults(run=cmd_run, default_log_level="info")

    p = commands.add_parser("feeds", help="the configured feeds and their polling state")
    sub = p.add_subparsers(title="feeds commands", metavar="ACTION", required=True)
    q = sub.add_parser(
        "list", help="each feed: last poll, HTTP status, new items, errors, next poll"
    )
    q.add_argument("--json", action="store_true", help="one JSON object per feed")
    q.add_argument("--redis", help="Redis URL")
    q.set_defaults(run=cmd_feeds_list)
    q = sub.add_parser("import", help="add the feeds of an OPML file (categories become tags)")
    q.add_argument("file", type=Path, help="an OPML file, as feed readers export")
    q.add_argument("--redis", help="Redis URL")
    q.set_defaults(run=cmd_feeds_import)
    q = sub.add_parser("export", help="every feed as OPML 2.0 (for Miniflux, FreshRSS, …)")
    q.add_argument("--output", "-o", type=Path, help="write to this file (default: stdout)")
    q.add_argument("--redis", help="Redis URL")
    q.set_defaults(run=cmd_feeds_export)

    p = commands.add_parser("status", help="streams, daemons and feeds at a glance")
    p.add_argument("--redis", help="Redis URL")
    p.set_defaults(run=cmd_status)

    redis_help = "Redis URL (default: MONITOR_REDIS_URL, else the embedded server under .monitor/)"
    p = commands.add_parser("replay", help="process local feed files once (default sample_feeds/)")
    p.add_argument("paths", nargs="*", type=Path, default=[Path("sample_feeds")], metavar="PATH")
    p.add_argument("--json", action="store_true", help="one JSON object per item, then a summary")
    p.add_argument("--fresh", action="store_true", help="start from empty state (deletes it)")
    p.add_argument("--rules", type=Path, help="rules directory (default rules/)")
    p.add_argument("--redis", help=redis_help)
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
        p.add_argument("--redis", help=redis_help)  # fmt: skip

    p = commands.add_parser("consume", help="read published alerts")
    group_options(p, None)
    p.add_argument("--from-start", action="store_true",
                   help="without --group: start at the oldest retained alert")  # fmt: skip
    p.add_argument("--json", action="store_true", help="one alert JSON document per line")
    p.add_argument("--dead", action="store_true", help="list the dead-lettered alerts")
    p.set_defaults(run=cmd_consume)

    p = commands.add_parser("forward", help="POST alerts to a webhook, signed; ack after 2xx")
    p.add_argument("--webhook", required=True, metavar="URL", help="where to POST each alert")
    p.add_argument("--secret", help="HMAC-SHA256 key (default: MONITOR_WEBHOOK_SECRET)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default 10)")
    p.add_argument("--attempts", type=int, default=4, help="tries per delivery (default 4)")
    group_options(p, "webhook")
    p.set_defaults(run=cmd_forward)

    p = commands.add_parser("rules", help="check or test rule files")
    sub = p.add_subparsers(title="rules commands", metavar="ACTION", required=True)
    q = sub.add_parser("check", help="validate every rule; errors name file, line and column")
    q.add_argument("dir", nargs="?", type=Path, help="rules directory (default rules/)")
    q.set_defaults(run=cmd_rules_check)
    q = sub.add_parser("test", help="run each rule's own examples")
    q.add_argument("dir", nargs="?", type=Path, help="rules directory (default rules/)")
    q.set_defaults(run=cmd_rules_test)
    q = sub.add_parser("explain", help="whether a rule matches a text, and why")
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
    q = sub.add_parser("backfill", help="run a rule over the retained items of the past")
    q.add_argument("rule", help="rule id")
    q.add_argument("--since", default="3d", help="how far back: 90m, 12h, 3d, 2w (default 3d)")
    q.add_argument("--dry-run", action="store_true", help="print what would match; publish nothing")
    q.add_argument("--json", action="store_true", help="one JSON object per story, then a summary")
    q.add_argument("--rules", type=Path, help="rules directory (default rules/)")
    q.add_argument("--redis", help="Redis URL")
    q.set_defaults(run=cmd_rules_backfill)
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
    from monitor.poll import FeedState, feed_id

    rows = []
    for feed in _feeds(settings, client):
        state = FeedState.from_hash(
            client.hgetall(runtime.Keys(settings.prefix).feed(feed_id(feed)))
        )
        rows.append(
            {
                "id": feed_id(feed),
                "name": feed.name,
                "url": state.url or feed.url,
                "tags": list(feed.tags),
                "last_poll": _when(state.last_poll),
                "status": state.last_status or None,
                "new": state.last_new,
                "errors": state.errors,
                "last_error": state.last_error or None,
                "next_poll": _when(state.next_poll),
                "interval": round(state.interval) or None,
                "polls": state.polls,
                "items": state.total_items,
            }
        )
    return rows


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
                str(r["status"] or "-"),
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
        rows = _feed_rows(settings, client)
        indexed = runtime.dedup_index(client, settings).originals()
        try:
            memory: int | None = client.info("memory")["used_memory"]
        except redis.ResponseError:  # an ACL user without @dangerous may not run INFO
            memory = None
    print(
        f"daemons running: {len(daemons)}"
        + "".join(f"\n  {d.get('instance')} (pid {d.get('pid')})" for d in daemons)
    )
    print(f"items: {lag} waiting, {pending} in progress, {dead} dead-lettered; alerts: {alerts}")
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
    failing = sum(1 for r in rows if r["errors"])
    print(f"feeds: {len(rows)} configured, {failing} failing")
    if rows:
        print()
        _print_feeds(rows)
    return 0


# --- replay ---------------------------------------------------------------------------


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    rules = load_rules(settings.rules_dir)
    files = feed_files(args.paths)
    items = read_feeds(files)
    fetcher = LocalFetcher(*{f.parent for f in files}, max_bytes=settings.http.max_bytes)
    summary = Summary()
    with runtime.redis_client(settings) as client:
        if args.fresh:
            runtime.clear(client, settings)
        pipeline = runtime.pipeline(client, settings, rules, fetcher)
        rows = []
        progress = Progress(len(items), "replay", enabled=False if args.json else None)
        for item, result, error in replay(items, pipeline.process, summary):
            progress.advance()
            if args.json:
                print(json.dumps(_item_json(item, result, error), ensure_ascii=False), flush=True)
            else:
                rows.append((item, result, error))
        progress.close()
    if args.json:
        print(json.dumps({"summary": summary.as_dict()}))
    else:
        _print_table(rows, summary)
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
        "language": result.article.language or None,
        "story_id": p.story_id,
        "duplicate_of": p.duplicate_of,
        "dedup": str(p.outcome),
        "similarity": round(p.similarity, 3),
        "rules": [m.rule_id for m in result.matches],
        "alerts": result.alerts,
        "wires": list(result.wires),
        "text_from": "page" if result.article.from_page else "feed",
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
                str(len(result.alerts)),
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
    signal.signal(signal.SIGTERM, _interrupt)
    with runtime.redis_client(settings) as client:
        if args.dead:
            for letter in dead_letters(client, settings.prefix):
                _print_dead(letter, args.json)
            return 0
        try:
            if args.group:
                _consume_group(args, settings, client)
            else:
                _consume_plain(args, settings, client)
        except KeyboardInterrupt:
            pass  # Ctrl-C or SIGTERM ends --follow cleanly; unacked alerts stay pending
    return 0


def _consumer(args: argparse.Namespace, settings: Settings, client) -> AlertConsumer:
    return AlertConsumer(
        client, group=args.group, consumer=args.consumer or "", prefix=settings.prefix,
        claim_idle=args.claim_idle, max_deliveries=args.max_deliveries,
    )  # fmt: skip


def _consume_group(args: argparse.Namespace, settings: Settings, client) -> None:
    consumer = _consumer(args, settings, client)
    source = consumer.follow() if args.follow else consumer.drain()
    for shown, delivery in enumerate(source, 1):
        _print_alert(delivery.value or {}, args.json)
        consumer.ack(delivery)  # at-least-once: acked once handled (printed)
        if args.count is not None and shown >= args.count:
            return


def _consume_plain(args: argparse.Namespace, settings: Settings, client) -> None:
    queue = runtime.alert_queue(client, settings)
    position = "-" if args.from_start else "(" + queue.last_id()
    shown = 0
    while args.count is None or shown < args.count:
        want = 100 if args.count is None else min(100, args.count - shown)
        batch = list(queue.read(start=position, count=want))
        for delivered in batch:
            _print_alert(delivered.alert, args.json)
            position = "(" + delivered.entry_id
            shown += 1
        if not batch:
            if not args.follow:
                return
            time.sleep(0.5)


def cmd_forward(args: argparse.Namespace, settings: Settings) -> int:
    from monitor.forward import Forwarder

    secret = args.secret or settings.webhook_secret
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with runtime.redis_client(settings) as client:
        forwarder = Forwarder(
            _consumer(args, settings, client), args.webhook, secret=secret,
            timeout=args.timeout, attempts=args.attempts, stop=stop,
        )  # fmt: skip
        try:
            delivered = forwarder.run(follow=args.follow, count=args.count)
        finally:
            forwarder.close()
    print(f"{delivered} alerts delivered to {args.webhook}", file=sys.stderr)
    return 0


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
    print(f"  {item['url']}")
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
    directory = args.dir or settings.rules_dir
    rules = load_rules(directory)
    print(f"{directory}: {len(rules.rules)} rules, {len(rules.aliases)} aliases, all valid")
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
