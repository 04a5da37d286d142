"""Key names from before the cluster layout (monitor/store/keys.py), renamed once on a single
server: alert markers, story claims, stream counters and dead letters, story sets and
summaries, document frequencies and digest windows carry hash tags since then. Without the
renaming an upgrade would forget which stories already alerted (a second `new`), the
streams' entry counts and the sinks' waiting digests.

Run by every command that connects (runtime.redis_client); after the first run a marker
key makes it one GET. A cluster never had the old names.
"""

from __future__ import annotations

import re

import redis
import structlog

from monitor.store.connection import is_cluster
from monitor.store.keys import Keys

log = structlog.get_logger(__name__)

LAYOUT = "2"  # 2: hash-tagged for Redis Cluster


def marker(keys: Keys) -> str:
    """The key saying which layout the keys under the prefix follow."""
    return f"{keys.prefix}layout"


def new_name(keys: Keys, old: str) -> str | None:
    """The name `old` (a key of the first layout) has now, or None if it kept its name."""
    if not old.startswith(keys.prefix) or "{" in old:
        return None
    rest = old[len(keys.prefix) :]
    for stream in ("alerts", "items"):
        if rest in (f"{stream}:seq", f"{stream}:dead"):
            return keys.beside(f"{keys.prefix}{stream}", rest.split(":", 1)[1])
    if rest.startswith("alerts:requeued:"):
        return keys.alerts_requeued(rest.removeprefix("alerts:requeued:"))
    if rest.startswith("alert:"):
        return keys.alert_seen(rest.removeprefix("alert:"))
    if found := re.fullmatch(r"story:(.+):alerts", rest):
        return keys.story_alerts(found[1])
    if rest.startswith("story:"):
        return keys.story(rest.removeprefix("story:"))
    if rest.startswith("summary:"):
        return keys.story_summary(rest.removeprefix("summary:"))
    if found := re.fullmatch(r"df:g(-?\d+)", rest):
        return keys.df(int(found[1]))
    if found := re.fullmatch(r"digest:(.+):(w:\d+|waiting|sent|lock)", rest):
        return f"{keys.prefix}digest:{{{found[1]}}}:{found[2]}"
    return None


def migrate(client: redis.Redis, keys: Keys) -> int:
    """Rename the keys of the first layout under the prefix, once; how many were renamed.
    A name already taken (a daemon of the new version wrote it meanwhile) is left alone."""
    if is_cluster(client) or client.get(marker(keys)) == LAYOUT:
        return 0
    renamed = 0
    for old in client.scan_iter(match=keys.pattern, count=1000):
        new = new_name(keys, old)
        if new is None:
            continue
        try:
            renamed += int(client.renamenx(old, new))
        except redis.ResponseError:  # gone meanwhile: another command renamed it
            continue
    client.set(marker(keys), LAYOUT)
    if renamed:
        log.warning(
            "keys_renamed",
            keys=renamed,
            layout=LAYOUT,
            reason="hash tags for Redis Cluster (CHANGELOG)",
        )
    return renamed
