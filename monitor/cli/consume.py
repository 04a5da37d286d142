"""`monitor consume` (alerts, dead letters, requeue) and `monitor forward` (webhooks)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from typing import Any

from monitor.cli.output import Command, counted, print_alert, print_dead, say_if_none
from monitor.config import Settings
from monitor.delivery.consumer import AlertConsumer, dead_letters
from monitor.errors import MonitorError
from monitor.pipeline import runtime


def register(commands: Any, command: Command) -> None:
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
    p.add_argument(
        "--from-start",
        action="store_true",
        help="without --group: start at the oldest retained alert",
    )
    p.add_argument("--json", action="store_true", help="one alert JSON document per line")
    p.add_argument("--dead", action="store_true", help="list the dead-lettered alerts")
    p.add_argument(
        "--requeue",
        nargs="*",
        metavar="ID",
        help="put these dead letters (entry or alert ids) back for their group (--group: "
        "only that group's); with --all, every one",
    )
    p.add_argument("--all", action="store_true", help="with --requeue: every dead letter")
    p.set_defaults(run=cmd_consume)

    p = command(
        commands, "forward", "deliver alerts to the [[sinks]] of monitor.toml (or a webhook)"
    )
    p.add_argument(
        "--sink",
        action="append",
        metavar="NAME",
        help="only this sink (repeatable; default: every configured sink)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print what each sink would send now; send and ack nothing",
    )
    p.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="serve the sinks' Prometheus metrics at http://HOST:PORT/metrics",
    )
    p.add_argument(
        "--webhook",
        metavar="URL",
        help="instead of the sinks: POST each alert to this URL (group webhook); the options "
        "below are for it",
    )
    # The delivery options below are for --webhook; a sink has its own in monitor.toml.
    p.add_argument("--secret", help="HMAC-SHA256 key (default: MONITOR_WEBHOOK_SECRET)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default 10)")
    p.add_argument("--attempts", type=int, default=4, help="tries per delivery (default 4)")
    p.add_argument(
        "--trip-after",
        type=int,
        default=5,
        metavar="N",
        help="pause the endpoint after N failed deliveries in a row (default 5)",
    )
    p.add_argument(
        "--pause",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="first pause of a failing endpoint; doubles up to 15 min (default 30)",
    )
    group_options(p, None)
    p.set_defaults(run=cmd_forward)


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
                print_dead(letter, args.json)
                shown += 1
            say_if_none(shown, args, "no alerts in the dead letters")
            return 0
        try:
            if args.group:
                shown = _consume_group(args, settings, client)
            else:
                shown = _consume_plain(args, settings, client)
        except KeyboardInterrupt:
            pass  # Ctrl-C or SIGTERM ends --follow cleanly; unacked alerts stay pending
    return 0


def _requeue(args: argparse.Namespace, settings: Settings, client) -> int:
    from monitor.delivery.consumer import requeue

    moved = requeue(
        client, settings.prefix, ids=None if args.all else args.requeue, group=args.group
    )
    for letter in moved:
        print(f"{letter['entry']}  {letter.get('id', '-')}  back for group {letter['group']}")
    groups = sorted({letter["group"] for letter in moved})
    print(
        f"{counted(len(moved), 'dead letter')} requeued"
        + (f"; read them with: monitor consume --group {groups[0]}" if len(groups) == 1 else "")
    )
    return 0


def _consumer(args: argparse.Namespace, settings: Settings, client) -> AlertConsumer:
    return AlertConsumer(
        client,
        group=args.group,
        consumer=args.consumer or "",
        prefix=settings.prefix,
        claim_idle=args.claim_idle,
        max_deliveries=args.max_deliveries,
    )


def _consume_group(args: argparse.Namespace, settings: Settings, client) -> int:
    consumer = _consumer(args, settings, client)
    source = consumer.follow() if args.follow else consumer.drain()
    shown = 0
    for shown, delivery in enumerate(source, 1):
        print_alert(delivery.value or {}, args.json)
        consumer.ack(delivery)  # at-least-once: acked once handled (printed)
        if args.count is not None and shown >= args.count:
            break
    say_if_none(shown, args, f"no alerts for group {args.group}")
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
            print_alert(delivered.alert, args.json)
            position = "(" + delivered.entry_id
            shown += 1
        if not batch:
            if not args.follow:
                break
            if not waiting:
                say_if_none(shown, args, "no alerts yet: waiting for new ones (Ctrl-C ends)")
                waiting = True
            time.sleep(0.5)
    hint = "" if args.from_start else " (only new ones are shown: --from-start for all)"
    say_if_none(shown or waiting, args, f"no alerts{hint}")
    return shown


def cmd_forward(args: argparse.Namespace, settings: Settings) -> int:
    if not args.webhook:
        return _forward_sinks(args, settings)
    if args.dry_run or args.sink or args.listen:
        raise MonitorError("--dry-run, --sink and --listen go with the sinks, not --webhook")
    from monitor.delivery.forward import Forwarder

    args.group = args.group or "webhook"
    secret = args.secret or settings.webhook_secret
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with runtime.redis_client(settings) as client:
        forwarder = Forwarder(
            _consumer(args, settings, client),
            args.webhook,
            secret=secret,
            timeout=args.timeout,
            attempts=args.attempts,
            stop=stop,
            trip_after=args.trip_after,
            pause=args.pause,
        )
        try:
            delivered = forwarder.run(follow=args.follow, count=args.count)
        finally:
            forwarder.close()
    dead = f", {forwarder.dead} dead-lettered" if forwarder.dead else ""
    print(f"{counted(delivered, 'alert')} delivered to {args.webhook}{dead}", file=sys.stderr)
    return 0


def _forward_sinks(args: argparse.Namespace, settings: Settings) -> int:
    from monitor.delivery.sinks.build import build
    from monitor.delivery.sinks.overview import preview
    from monitor.delivery.sinks.runner import SinkMetrics, SinkRunner, serve

    if args.group:
        raise MonitorError("--group goes with --webhook: each sink has its group (sink:NAME)")
    given = [
        f"--{n.replace('_', '-')}"
        for n, default in _WEBHOOK_ONLY.items()
        if getattr(args, n) != default
    ]
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


_WEBHOOK_ONLY = {
    "secret": None,
    "timeout": 10.0,
    "attempts": 4,
    "trip_after": 5,
    "pause": 30.0,
    "claim_idle": 60.0,
    "max_deliveries": 5,
}


def _print_preview(runner: Any, count: int, shown: list[str]) -> None:
    config = runner.config
    mode = f", digest {config.digest.describe()}" if config.digest else ""
    print(
        f"== sink {config.name} ({config.type} {config.shown_url}{mode}; takes "
        f"{config.filter.describe()}): {counted(count, 'message')} would be sent"
        + (f" (the first {len(shown)} below)" if count > len(shown) else "")
    )
    for text in shown:
        print(text)
        print()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
