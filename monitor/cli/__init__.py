"""The `monitor` command: one module per command group (run, feeds, status, replay,
consume/forward, rules, search) and one for what they print (output).

May import: everything below it (daemon, desk, pipeline, stages, store, vocabulary).
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis

from monitor import __version__, log
from monitor.cli import consume, feeds, replay, rules, run, search, status, top
from monitor.config import load
from monitor.errors import MonitorError
from monitor.store.connection import describe
from monitor.store.refusals import refusal


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
    # SIGTERM (`kill`, systemd, Docker) unwinds like Ctrl-C instead of killing the process:
    # the `with` blocks are left, so an embedded Redis this command started is stopped.
    # The commands that run until stopped (run, web, consume, forward, replay) set their own.
    signal.signal(signal.SIGTERM, _terminated)
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
    except (redis.RedisError, redis.exceptions.RedisClusterException) as exc:
        found = refusal(exc)
        if found is not None and found.writes_refused:  # e.g. a backfill on a full Redis
            print(f"monitor: error: Redis refuses writes: {found.reason}", file=sys.stderr)
        else:
            print(f"monitor: error: Redis: {describe(exc)}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `monitor ... | head`
        sys.stderr.close()
        return 0


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _global_options(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    """The options every command takes, before or after its name. Below the top level
    their default is "absent", so that one given before the command is kept."""
    default = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--config", type=Path, default=default, metavar="FILE", help="monitor.toml (default: none)"
    )
    parser.add_argument(
        "--redis",
        default=default,
        metavar="URL",
        help="Redis URL (default: MONITOR_REDIS_URL, else the embedded server)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=default,
        metavar="DIR",
        help="the embedded server's data (default: .monitor/ beside --config, else here)",
    )
    parser.add_argument(
        "--log-level", choices=("debug", "info", "warning", "error"), default=default
    )


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

    for module in (run, feeds, status, replay, consume, rules, search, top):
        module.register(commands, command)
    return parser
