"""Looking at sinks without delivering: what each would send now (`monitor forward
--dry-run`) and its backlog (`monitor status`). Reads only: no group is made, nothing acked."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import redis

from monitor.delivery.queue import ALERT_FIELD
from monitor.delivery.sinks.digest import DigestStore, Window, created
from monitor.delivery.sinks.runner import SinkRunner
from monitor.sinkconfig import SinkConfig
from monitor.store.keys import Keys
from monitor.store.streams import StreamGroup


def preview(
    runner: SinkRunner, client: redis.Redis, prefix: str = "monitor:", limit: int = 20
) -> tuple[int, list[str]]:
    """What the sink would send now, without sending, acking or creating anything: how many
    messages, and the first `limit` of them — one per alert after its group's position
    that its filter takes, or for a digest sink one per window with what it would hold.
    (Alerts its group holds pending, to be tried again, are not shown.)"""
    keys = Keys(prefix)
    start = "-" if runner.config.start == "retained" else "+"  # where a new group would start
    try:
        for group in client.xinfo_groups(keys.alerts):
            if group["name"] == runner.config.consumer_group:
                start = "(" + group["last-delivered-id"]
    except redis.ResponseError:
        return 0, []  # no alerts stream yet

    alerts: list[dict[str, Any]] = []
    for _, fields in [] if start == "+" else client.xrange(keys.alerts, min=start, count=10_000):
        try:
            alert = json.loads(fields.get(ALERT_FIELD, ""))
        except ValueError:
            continue
        if isinstance(alert, dict) and runner.config.filter.matches(alert):
            alerts.append(alert)
    if runner.store is None:
        return len(alerts), [runner.sink.preview_alert(a) for a in alerts[:limit]]
    now = runner.clock()
    windows: dict[int, list[dict[str, Any]]] = {
        s: list(runner.store.window(s).alerts) for s in runner.store.waiting()
    }
    for alert in alerts:
        windows.setdefault(runner.store.schedule.window(created(alert) or now)[0], []).append(alert)
    shown = []
    for begin, held in sorted(windows.items()):
        end = runner.store.schedule.window(begin)[1]
        when = (
            "due now" if end <= now else time.strftime("at %Y-%m-%d %H:%M:%S UTC", time.gmtime(end))
        )
        window = Window(runner.name, begin, end, tuple(held))
        shown.append(f"(digest {when}) " + runner.sink.preview_digest(window))
    return len(shown), shown[:limit]


def status(client: redis.Redis, config: SinkConfig, prefix: str = "monitor:") -> str:
    """One line for `monitor status`: the sink's group backlog, and its digest windows."""
    keys = Keys(prefix)
    line = f"{config.name} ({config.type} {config.shown_url}"
    line += f", digest {config.digest.describe()})" if config.digest else ")"
    groups = {}
    with contextlib.suppress(redis.ResponseError):  # no alerts stream yet
        groups = {g["name"]: g for g in client.xinfo_groups(keys.alerts)}
    group = groups.get(config.consumer_group)
    if group is None:
        return line + ": not started (monitor forward)"
    lag, pending = StreamGroup[Any](
        client,
        keys.alerts,
        config.consumer_group,
        field=ALERT_FIELD,
        decode=json.loads,
        dead_stream=keys.alerts_dead,
    ).lag()  # (counts what follows the group's position where Redis < 7 has no lag field)
    line += f": {lag} waiting, {pending} in progress"
    if config.digest:
        store = DigestStore(client, keys, config.name, config.digest)
        waiting = store.waiting()
        held = sum(client.hlen(keys.digest_window(config.name, s)) for s in waiting)
        sent = store.sent()
        line += f"; {held} alert{'s' if held != 1 else ''} in {len(waiting)} digest "
        line += f"window{'s' if len(waiting) != 1 else ''} to send"
        if sent:
            line += f", last sent {sent[max(sent)]['sent_at']}"
    return line
