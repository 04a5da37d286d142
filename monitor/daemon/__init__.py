"""`monitor run`: the long-running daemon. `Daemon` only wires its rooms together:

    scheduler.py  polling: APScheduler jobs as coroutines on the HTTP loop, leases, feed list
    worker.py     processing: the items stream read as a consumer group, pages, ack
    release.py    staged alerts shown to consumers once on disk (alerts.durable_hold)
    control.py    the rules in force (reload on change or SIGHUP) and automatic backfills
    health.py     what /healthz and /livez say, from the daemon's own state
    endpoints.py  /healthz, /livez, /metrics (and the desk, with web.in_daemon)
    metrics.py    the Prometheus metrics

Threads: polls are coroutines on the HTTP event loop (the fetcher's thread; their Redis
commands batched by one thread, feed parsing in a small pool) and append new entries to the
items stream; the main thread processes them (trafilatura is only ever called from it).
Several daemons on one Redis share the work: a per-feed lease and the stored next poll time
make each feed polled once per interval; the consumer group gives each item to one daemon;
items left pending by a daemon that died are taken back (dead daemons' at once, stale ones
after `claim_idle`).

Signals: SIGTERM/SIGINT stop polling, finish the item in hand, and exit 0 (items read but
not started stay pending and are re-claimed); a second signal exits at once. SIGHUP
reloads the rules and the feed list now (so does the periodic check); a broken rule set is
logged and the previous one keeps running.

May import: the desk (served with web.in_daemon), the pipeline, the stages, the store and
the vocabulary; never the CLI.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import redis
import structlog

from monitor.config import FeedConfig, Settings
from monitor.daemon.control import RuleControl
from monitor.daemon.endpoints import Server, answers, serve
from monitor.daemon.health import FAILING_AFTER, STALE_AFTER, Health
from monitor.daemon.metrics import Metrics
from monitor.daemon.release import Releaser
from monitor.daemon.scheduler import Scheduler, hosts
from monitor.daemon.worker import Worker, alive
from monitor.ingest.fetch import HttpFetcher
from monitor.ingest.items import ItemsQueue
from monitor.pipeline import runtime
from monitor.pipeline.process import Pipeline
from monitor.rules import RuleSet
from monitor.store.keys import Keys

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["FAILING_AFTER", "STALE_AFTER", "Daemon", "Metrics"]

log = structlog.get_logger("monitor.daemon")

HOST = socket.gethostname()
HEARTBEAT_TTL = 30


def _pid_space() -> str:
    """The host name and PID namespace: where a heartbeat's pid can be checked (containers
    sharing a host name through host networking have PID namespaces of their own)."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:  # not Linux: the host name alone
        return HOST
    return f"{HOST}/{namespace}"


PID_SPACE = _pid_space()


class Daemon:
    def __init__(self, settings: Settings, client: redis.Redis) -> None:
        self.settings = settings
        self.client = client
        self.keys = Keys(settings.prefix)
        self.instance = settings.daemon.consumer or f"{HOST}-{os.getpid()}"
        self.metrics = Metrics()
        self.state = Health(self.metrics, self.instance)
        self.listening = ""  # the address /metrics got (daemon.listen may ask for port 0)
        self.fetcher = HttpFetcher(settings.http, trusted_hosts=hosts(settings.feeds))
        self.items = ItemsQueue(client, self.keys, maxlen=settings.daemon.items_maxlen)
        self.control = RuleControl(settings, client, self.metrics)
        # Alerts held from consumers while a crash may lose Redis's last writes.
        self.hold, self.fsync = runtime.durable_hold(client, settings)
        self.pipeline: Pipeline = runtime.pipeline(
            client, settings, self.control.rules, self.fetcher, hold=self.hold
        )
        self.releaser = Releaser(self.pipeline.queue, self.metrics)
        self.scheduler = Scheduler(
            settings,
            client,
            instance=self.instance,
            fetcher=self.fetcher,
            items=self.items,
            metrics=self.metrics,
            health=self.state,
        )
        self.worker = Worker(
            settings,
            client,
            instance=self.instance,
            items=self.items,
            pipeline=self.pipeline,
            fetcher=self.fetcher,
            metrics=self.metrics,
            health=self.state,
            heartbeat=self.heartbeat,
            housekeeping=self.housekeeping,
            alive=lambda beat: alive(beat, PID_SPACE),
        )
        self.metrics.lag.set_function(lambda: self.items.lag()[0])
        self.metrics.pending.set_function(lambda: self.items.lag()[1])

    # --- what others read of it (the health endpoints, tests) -----------------------------

    @property
    def stop(self) -> threading.Event:
        return self.state.stop

    @property
    def rules(self) -> RuleSet:
        return self.control.rules

    @property
    def feeds(self) -> list[FeedConfig]:
        return self.scheduler.feeds

    def health(self) -> tuple[bool, dict]:
        return self.state.health(self.client, self.heartbeat)

    def liveness(self) -> tuple[bool, dict]:
        return self.state.liveness()

    # --- lifecycle ---------------------------------------------------------------------

    def run(self) -> int:
        self._signals()
        server = self._serve() if self.settings.daemon.listen else None
        self.items.ensure_group()
        self.releaser.start()
        self.control.backfill_new(self.pipeline)
        self.scheduler.start()
        log.info(
            "daemon_started",
            instance=self.instance,
            feeds=len(self.scheduler.feeds),
            paused=len(self.scheduler.paused),
            rules=len(self.control.rules.rules),
            listen=self.listening or None,
            redis=runtime.describe_redis(self.settings),
            redis_fsync=self.fsync,
            durable_hold_s=self.hold,
        )
        try:
            self.worker.loop()
        finally:
            self.scheduler.shutdown()
            self.worker.shutdown()
            self.releaser.stop()
            self.fetcher.close()
            if server is not None:
                server.shutdown()
            with contextlib.suppress(redis.RedisError):
                self.client.delete(self.keys.daemon(self.instance))
            log.info("daemon_stopped", instance=self.instance)
        return 0

    def _signals(self) -> None:
        def stop(signum: int, frame: object) -> None:
            if self.state.stop.is_set():
                log.warning("daemon_killed", signal=signal.Signals(signum).name)
                os._exit(1)  # second signal: at once
            log.info("daemon_stopping", signal=signal.Signals(signum).name)
            self.state.stop.set()

        def reload(signum: int, frame: object) -> None:
            self.worker.due = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, reload)

    def housekeeping(self) -> None:
        """Every daemon.rules_check, and at once on SIGHUP: changed rules (then their
        backfills), and the feed list."""
        rules = self.control.reload()
        if rules is not None:
            self.pipeline.rules = rules
            self.control.backfill_new(self.pipeline)
        self.scheduler.sync_feeds()

    def heartbeat(self) -> None:
        beat = {
            "instance": self.instance,
            "host": PID_SPACE,
            "pid": os.getpid(),
            "at": time.time(),
            "feeds": len(self.scheduler.feeds),
            "rules": len(self.control.rules.rules),
            "listen": self.listening,
        }
        self.client.set(self.keys.daemon(self.instance), json.dumps(beat), ex=HEARTBEAT_TTL)

    def _serve(self) -> Server:
        endpoints = answers(self.metrics, self.health, self.liveness)
        desk: Callable[[], Starlette] | None = None
        if self.settings.web.in_daemon:
            from monitor.web import create_app

            def desk() -> Starlette:
                # The daemon reloads the rules (then backfills): its desk shows the ones it runs.
                return create_app(self.settings, self.client, self.control.files, reload=False)

        server, self.listening = serve(self.settings.daemon.listen, endpoints, desk)
        log.info("http_listening", address=self.listening, desk=desk is not None or None)
        return server
