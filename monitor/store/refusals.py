"""Redis refusals, recognised wherever they arrive: a plain command's typed exception
(redis-py strips the error code from those it has a class for), a script's error (the
refused command's reply wrapped in `Error running script … -OOM …`), or a pipeline's
replies (the first error raised, or errors in place of replies).

A refusal is never the fault of the item, feed or alert at hand: the caller waits and tries
again instead of counting a failure. `refusal` says which kind, with a one-line reason."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import redis
from redis import exceptions as rex


class Kind(StrEnum):
    OOM = "oom"  # maxmemory reached under noeviction
    READONLY = "readonly"  # a replica (a failover demoted this node)
    MISCONF = "misconf"  # persistence failing, stop-writes-on-bgsave-error
    NOSCRIPT = "noscript"  # the script cache is empty (a restart, a promoted replica)
    REDIRECT = "redirect"  # Cluster: MOVED, ASK, CLUSTERDOWN, TRYAGAIN
    ACL = "acl"  # NOPERM, NOAUTH, WRONGPASS


# Kinds after which no write can succeed until the operator (or Redis) acts: the daemon
# says it on /healthz and waits. The others pass by themselves (a retry, a reload).
WRITES_REFUSED = frozenset({Kind.OOM, Kind.READONLY, Kind.MISCONF, Kind.ACL})

_REASONS = {
    Kind.OOM: "out of memory (maxmemory reached, OOM)",
    Kind.READONLY: "read-only replica (READONLY)",
    Kind.MISCONF: "persistence failing (MISCONF)",
    Kind.NOSCRIPT: "script not loaded (NOSCRIPT)",
}


@dataclass(frozen=True)
class Refusal:
    kind: Kind
    reason: str  # one line, for logs, /healthz and the desk's page

    @property
    def writes_refused(self) -> bool:
        return self.kind in WRITES_REFUSED


_TYPED: tuple[tuple[type[BaseException], Kind, str], ...] = (
    (rex.OutOfMemoryError, Kind.OOM, "OOM"),
    (rex.ReadOnlyError, Kind.READONLY, "READONLY"),
    (rex.NoScriptError, Kind.NOSCRIPT, "NOSCRIPT"),
    (rex.AskError, Kind.REDIRECT, "MOVED/ASK"),  # MovedError is an AskError
    (rex.ClusterDownError, Kind.REDIRECT, "CLUSTERDOWN"),
    (rex.TryAgainError, Kind.REDIRECT, "TRYAGAIN"),
    (rex.NoPermissionError, Kind.ACL, "NOPERM"),
    (rex.AuthenticationError, Kind.ACL, "NOAUTH/WRONGPASS"),
)

# Error codes as they appear in a reply's text: at its start (an untyped ResponseError),
# or after the `-` of the refused command's reply inside a script's error.
_CODES = {
    "OOM": Kind.OOM,
    "READONLY": Kind.READONLY,
    "MISCONF": Kind.MISCONF,
    "NOSCRIPT": Kind.NOSCRIPT,
    "MOVED": Kind.REDIRECT,
    "ASK": Kind.REDIRECT,
    "CLUSTERDOWN": Kind.REDIRECT,
    "TRYAGAIN": Kind.REDIRECT,
    "NOPERM": Kind.ACL,
    "NOAUTH": Kind.ACL,
    "WRONGPASS": Kind.ACL,
}
_CODE = re.compile(r"(?:^|[\s:]-?|^-)(" + "|".join(_CODES) + r")\b")
# Texts of typed errors whose code redis-py stripped, when met as plain text again.
# (A script's denied command says so in words, without NOPERM.)
_MARKERS = (
    ("used memory > 'maxmemory'", Kind.OOM, ""),
    ("against a read only replica", Kind.READONLY, ""),
    ("can't run this command or subcommand", Kind.ACL, "NOPERM: a script's command"),
    ("can't access at least one of the keys", Kind.ACL, "NOPERM: a script's key"),
)


def refusal(error: object) -> Refusal | None:
    """The refusal `error` reports — an exception, or a pipeline's replies (the first
    refusal among them) — or None for anything else."""
    if isinstance(error, BaseException):
        return _of_exception(error)
    if isinstance(error, list | tuple):
        return first_refusal(error)
    return None


def first_refusal(replies: Iterable[object]) -> Refusal | None:
    """The first refusal among a pipeline's replies (raise_on_error=False)."""
    for reply in replies:
        if isinstance(reply, BaseException) and (found := _of_exception(reply)):
            return found
    return None


def _of_exception(exc: BaseException) -> Refusal | None:
    if not isinstance(exc, redis.RedisError):
        return None
    text = _first_line(exc)
    for cls, kind, code in _TYPED:
        if isinstance(exc, cls):
            return Refusal(kind, _REASONS.get(kind) or f"{_words(kind)} ({code}: {text})")
    if not isinstance(exc, redis.ResponseError):
        return None
    if match := _CODE.search(text):
        code = match.group(1)
        kind = _CODES[code]
        if kind is not Kind.REDIRECT or code in ("CLUSTERDOWN", "TRYAGAIN") or _slot(text):
            return Refusal(kind, _REASONS.get(kind) or f"{_words(kind)} ({_from(text, match)})")
    for marker, kind, code in _MARKERS:
        if marker in text:
            return Refusal(kind, _REASONS.get(kind) or f"{_words(kind)} ({code})")
    return None


def _slot(text: str) -> bool:
    """MOVED and ASK are followed by a slot number: not just any word `ASK`."""
    return re.search(r"\b(MOVED|ASK) \d+ ", text) is not None


def _words(kind: Kind) -> str:
    if kind is Kind.REDIRECT:
        return "Redis Cluster redirected or refused the command"
    return "Redis denied the command to this user"


def _from(text: str, match: re.Match[str]) -> str:
    return text[match.start(1) :].strip()


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:300]
