"""`monitor run` (the daemon) and `monitor web` (the desk)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import structlog

from monitor.cli.output import Command
from monitor.config import Settings
from monitor.errors import MonitorError, RedisUnavailable
from monitor.pipeline import runtime
from monitor.rules import RuleFiles

# Seconds at least between two looks of the desk at the rules directory's files (a stat each).
RULES_LOOK = 2.0


def register(commands: Any, command: Command) -> None:
    p = command(commands, "run", "the daemon: poll the configured feeds, process, alert")
    p.add_argument("--rules", type=Path, help="rules directory (default rules/)")
    p.set_defaults(run=cmd_run, default_log_level="info")

    p = command(commands, "web", "the desk: a web page over stories, alerts, feeds and rules")
    p.add_argument("--listen", metavar="HOST:PORT", help="default web.listen (127.0.0.1:8080)")
    p.add_argument("--rules", type=Path, help="rules directory (default rules/)")
    p.set_defaults(run=cmd_web, default_log_level="info")


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


def cmd_web(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the desk until SIGTERM or SIGINT, then exit 0, the embedded Redis stopped (if
    nobody else uses it). uvicorn serves from a thread: on the main thread it re-raises
    SIGTERM once stopped, and the process died before leaving its `with` blocks."""
    from monitor.web import Served, bind, create_app

    stopping = threading.Event()
    served: Served | None = None

    def stop(signum: int, frame: object) -> None:
        if stopping.is_set() and served is not None:
            served.server.force_exit = True  # a second signal: open requests are cut
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)

    listen = args.listen or settings.web.listen
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise MonitorError(f"--listen: expected HOST:PORT, got {listen!r}")
    # The desk follows the rules directory as a daemon does (a rule added shows up).
    rules = RuleFiles(settings.rules_dir, every=RULES_LOOK)
    with runtime.redis_client(settings) as client:
        app = create_app(settings, client, rules)
        try:
            sock = bind(host.strip("[]"), int(port))
        except OSError as exc:
            raise MonitorError(
                f"cannot listen on {listen} ({exc.strerror}): set web.listen or --listen"
            ) from None
        where = sock.getsockname()
        served = Served(app, sock)
        structlog.get_logger(__name__).info(
            "web_listening", address=f"{where[0]}:{where[1]}", writable=bool(settings.web.token)
        )
        print(f"the desk: http://{where[0]}:{where[1]}/", file=sys.stderr, flush=True)
        served.wait(stopping)
    return 0
