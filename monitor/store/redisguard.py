"""What the monitor requires of its Redis, checked at start and watched while running.

- No eviction: every key matters (feed state, seen entries, alert markers and claims, the
  streams themselves); a Redis that may drop keys under memory pressure doubles and loses
  alerts without a word. Only `maxmemory-policy noeviction` is accepted, unless the operator
  opts in (`redis_allow_eviction`, unsafe).
- A rise of `evicted_keys` while running is an error (someone changed the policy, or the
  check could not be made).
- How it persists: with AOF and `appendfsync everysec` (or `no`), a crash may lose the last
  seconds of writes, which the daemon allows for by holding alerts back (`fsync_policies`).
- Writes refused (out of memory, a read-only replica, a failing disk, an ACL denial) are
  recognised (`monitor.store.refusals`), so that the daemon waits for Redis instead of
  failing item after item.
"""

from __future__ import annotations

import redis
import structlog

from monitor.errors import RedisEvicts
from monitor.store.connection import primaries
from monitor.store.refusals import refusal

log = structlog.get_logger(__name__)

SAFE_POLICY = "noeviction"

OOM = "out of memory (maxmemory reached, OOM)"
READONLY = "read-only replica (READONLY)"


def write_refusal(exc: BaseException) -> str | None:
    """Why Redis refuses writes (out of memory, a replica, failing persistence, an ACL
    denial), when `exc` says it does; None for any other error (see `refusals` for the
    passing refusals too: NOSCRIPT, cluster redirects)."""
    found = refusal(exc)
    return found.reason if found is not None and found.writes_refused else None


def eviction_settings(client: redis.Redis) -> tuple[str, int] | str:
    """(maxmemory-policy, maxmemory) from CONFIG GET, else from INFO memory; or, when
    neither is allowed, a sentence saying what could not be checked and why. On a cluster,
    every master is asked, and the first that may evict (else the first) answers."""
    found = [_eviction_settings(node) for node in primaries(client)]
    unsafe = [f for f in found if isinstance(f, tuple) and f[0] != SAFE_POLICY]
    return (unsafe or found)[0]


def _eviction_settings(client: redis.Redis) -> tuple[str, int] | str:
    refused = []
    try:
        config = client.config_get("maxmemory*")
        return str(config["maxmemory-policy"]), int(config.get("maxmemory", 0))
    except (redis.ResponseError, KeyError) as exc:  # an ACL user, a renamed CONFIG
        refused.append(f"CONFIG GET ({_first_line(exc)})")
    try:
        info = client.info("memory")
        return str(info["maxmemory_policy"]), int(info.get("maxmemory", 0))
    except (redis.ResponseError, KeyError) as exc:
        refused.append(f"INFO memory ({_first_line(exc)})")
    return (
        "could not check that Redis does not evict keys: "
        + " and ".join(refused)
        + f" refused; make sure maxmemory-policy is {SAFE_POLICY}"
    )


def fsync_policies(client: redis.Redis) -> set[str | None]:
    """How Redis puts writes on disk, from CONFIG GET: `appendfsync` ("always", "everysec",
    "no") with AOF on, "no aof" without; None when CONFIG GET is refused. One answer per
    master (a cluster's may differ)."""
    return {_fsync_policy(node) for node in primaries(client)}


def _fsync_policy(client: redis.Redis) -> str | None:
    try:
        config = client.config_get("append*")
        if str(config["appendonly"]) != "yes":
            return "no aof"
        return str(config["appendfsync"])
    except (redis.ResponseError, KeyError):  # an ACL user, a renamed CONFIG, a managed Redis
        return None


def check_eviction(client: redis.Redis, *, allow: bool, where: str) -> None:
    """Refuse (RedisEvicts) a Redis whose policy may evict the monitor's keys, unless
    `allow`; log what could not be checked."""
    found = eviction_settings(client)
    if isinstance(found, str):
        log.warning("redis_policy_unchecked", redis=where, reason=found)
        return
    policy, maxmemory = found
    if policy == SAFE_POLICY:
        return
    if allow:
        log.warning(
            "redis_may_evict",
            redis=where,
            policy=policy,
            maxmemory=maxmemory,
            reason="allowed by redis_allow_eviction: alerts may be doubled or lost",
        )
        return
    raise RedisEvicts(where, policy, maxmemory)


class EvictionWatch:
    """Follows INFO stats `evicted_keys`: `check()` returns how many keys Redis evicted
    since the previous check (logged as an error), 0 when none or when it cannot tell."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.last: int | None = None
        self.blind = False  # INFO refused: said once

    def check(self) -> int:
        try:  # summed over the masters of a cluster (a failover restarts a count: see below)
            total = sum(int(node.info("stats")["evicted_keys"]) for node in primaries(self.client))
        except (redis.ResponseError, KeyError, ValueError) as exc:
            if not self.blind:
                self.blind = True
                log.warning("redis_evictions_unwatched", reason=_first_line(exc))
            return 0
        previous, self.last = self.last, total
        if previous is None or total <= previous:
            return 0  # the first reading, or a restarted Redis
        log.error(
            "redis_evicted_keys",
            evicted=total - previous,
            total=total,
            hint=f"set maxmemory-policy {SAFE_POLICY}: evicted keys lose feed state, "
            "alert markers and stream entries",
        )
        return total - previous


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]
