"""`monitor status`, `monitor redis-cli` and `monitor redis-cluster`."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import redis

from monitor.cli.feeds import feed_rows
from monitor.cli.output import Command, counted, print_feeds
from monitor.config import Settings
from monitor.errors import MonitorError
from monitor.pipeline import runtime

# Below this many items Redis's own footprint (~1 MB) outweighs theirs: a per-item figure
# would be off by orders of magnitude.
ESTIMATE_FROM = 1000


def register(commands: Any, command: Command) -> None:
    p = command(commands, "status", "streams, daemons and feeds at a glance")
    p.set_defaults(run=cmd_status)

    p = command(commands, "redis-cli", "redis-cli against the configured (or embedded) Redis")
    p.set_defaults(run=cmd_redis_cli)

    p = command(commands, "redis-cluster", "a local Redis Cluster of the shipped redis-server")
    p.add_argument("action", choices=("start", "stop"))
    p.add_argument("directory", type=Path, metavar="DIR", help="its data, a folder per node")
    p.add_argument("--masters", type=int, default=3, help="(default 3, the least a cluster has)")
    p.add_argument("--replicas", type=int, default=0, help="per master (default 0)")
    p.add_argument(
        "--port",
        type=int,
        default=7001,
        help="the first node's port; the others follow; each also uses port+10000 (default 7001)",
    )
    p.set_defaults(run=cmd_redis_cluster)


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from monitor.ingest.items import ItemsQueue
    from monitor.store.connection import primaries
    from monitor.store.redisguard import eviction_settings
    from monitor.store.retention import stream_groups

    keys = runtime.Keys(settings.prefix)
    with runtime.redis_client(settings, check=False) as client:  # status shows, not refuses
        policy = eviction_settings(client)
        groups = stream_groups(client, settings)
        daemons = [json.loads(client.get(k) or "{}") for k in client.scan_iter(keys.daemon("*"))]
        lag, pending = ItemsQueue(client, keys, maxlen=1).lag()
        alerts = client.xlen(keys.alerts) if client.exists(keys.alerts) else 0
        dead = client.xlen(keys.items_dead) if client.exists(keys.items_dead) else 0
        dead_alerts = client.xlen(keys.alerts_dead) if client.exists(keys.alerts_dead) else 0
        rows = feed_rows(settings, client)
        indexed = runtime.dedup_index(client, settings).originals()
        sinks = [_sink_status(client, sink, settings.prefix) for sink in settings.sinks]
        try:  # every master's, on a cluster
            memory: int | None = sum(n.info("memory")["used_memory"] for n in primaries(client))
        except redis.ResponseError:  # an ACL user without @dangerous may not run INFO
            memory = None
    print(f"redis: {runtime.describe_redis(settings)}")
    print(
        f"daemons running: {len(daemons)}"
        + "".join(
            f"\n  {d.get('instance')} (pid {d.get('pid')}"
            + (f", listening on {d['listen']}" if d.get("listen") else "")
            + f", {counted(d['feeds'], 'feed') if 'feeds' in d else '? feeds'})"
            for d in daemons
        )
    )
    print(
        f"items: {lag} waiting, {pending} in progress, {dead} dead-lettered; alerts: {alerts}"
        + (f", {dead_alerts} dead-lettered (monitor consume --dead)" if dead_alerts else "")
    )
    if sinks:
        print(f"sinks: {len(sinks)}" + "".join(f"\n  {line}" for line in sinks))
    line = f"dedup window ({settings.story_window_hours:g} h): {counted(indexed, 'item')} indexed"
    if memory is not None:
        line += f"; Redis memory {memory / 2**20:.1f} MB"
        if indexed >= ESTIMATE_FROM:
            line += f" (~{memory / indexed / 1024:.1f} KB per item, streams included)"
        elif indexed:
            line += " (too few items to estimate the memory per item)"
    print(line)
    print(f"Redis maxmemory-policy: {policy[0]}" if isinstance(policy, tuple) else policy)
    for group in groups:
        print(
            f"{group.stream.removeprefix(settings.prefix)} group {group.group}: {group.describe()}"
        )
    failing = [r for r in rows if r["errors"]]
    imported = sum(1 for r in rows if not r["configured"])
    print(
        f"feeds: {len(rows)} ({len(rows) - imported} configured, {imported} imported), "
        f"{sum(1 for r in rows if r['paused'])} paused, {len(failing)} failing"
        + (" (all: monitor feeds list)" if rows else "")
    )
    if failing:
        print()
        print_feeds(failing)
    return 0


def _sink_status(client, sink, prefix: str) -> str:
    from monitor.delivery.sinks.overview import status

    return status(client, sink, prefix)


def cmd_redis_cli(args: argparse.Namespace, settings: Settings) -> int:
    """`redis-cli ARGS` against the Redis the other commands use (embedded: started for the
    duration and stopped after, unless another command still uses it)."""
    import subprocess
    from urllib.parse import unquote, urlsplit

    from monitor.store.embedded import find_redis_cli

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
        if parts.scheme in ("redis", "rediss") and _is_cluster(url):
            target.append("-c")  # follow a cluster's redirections to the key's node
        try:
            return subprocess.run(
                [str(binary), *target, *args.passed], check=False, env=env
            ).returncode
        except OSError as exc:
            raise MonitorError(f"cannot run {binary}: {exc}") from exc


def cmd_redis_cluster(args: argparse.Namespace, settings: Settings) -> int:
    """Start (or restart) a cluster on 127.0.0.1 with its data in DIR, the nodes running in
    the background with AOF on; or stop it."""
    from monitor.store.localcluster import LocalCluster

    cluster = LocalCluster(
        args.directory.resolve(),
        masters=args.masters,
        replicas=args.replicas,
        port=args.port,
        persist=True,
    )
    if args.action == "stop":
        cluster.stop()
        print(f"stopped the nodes of {args.directory}")
        return 0
    cluster.start(daemonize=True)
    count = args.masters * (1 + args.replicas)
    last = args.port + count - 1
    print(
        f"{count} nodes on 127.0.0.1:{args.port}-{last} ({args.masters} masters), data in "
        f"{args.directory}\nexport MONITOR_REDIS_URL={cluster.url}"
    )
    return 0


def _is_cluster(url: str) -> bool:
    from monitor.store.connection import connect, is_cluster

    try:
        client = connect(url)
    except MonitorError:
        return False  # redis-cli says what is wrong, in its words
    try:
        return is_cluster(client)
    finally:
        client.close()
