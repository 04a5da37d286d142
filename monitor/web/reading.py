"""What the desk reads and checks: retained items newest first (with a cheap look at raw
text before parsing), alerts as rows, and the small parsers of query values."""

from __future__ import annotations

import hmac
import math
from collections.abc import Iterator
from typing import Any

import redis

from monitor.retained.items import Retained
from monitor.rules import Document, Rule
from monitor.web.render import when

SEVERITIES = ("low", "medium", "high", "critical")


def document_of(kept: Retained) -> Document:
    return Document(
        title=kept.item.title or kept.article.title,
        text=kept.article.text,
        source=kept.item.source,
        lang=kept.article.language,
        url=kept.url,
    )


def clauses_of(rule: Rule) -> tuple:
    from monitor.rules.query import And

    return rule.node.nodes if isinstance(rule.node, And) else (rule.node,)


def newest_retained(client: redis.Redis, key: str, since: float) -> Iterator[tuple[str, dict]]:
    """Retained entries (id, fields), newest first, back to `since`."""
    high, low = "+", f"{int(since * 1000)}-0"
    while True:
        entries = client.xrevrange(key, max=high, min=low, count=500)
        yield from entries
        if len(entries) < 500:
            return
        high = "(" + entries[-1][0]


def may_contain(fields: dict[str, str], needs: frozenset[tuple[str, bool]]) -> bool:
    """Whether a retained item may hold one of the (folded) words a match needs: a cheap
    look at its raw text before it is parsed and tokenised. Exact for ASCII text (a word
    or prefix that is not a substring of the lower-cased text cannot be one of its
    tokens); other text is always looked at properly."""
    text = "\n".join(fields.values())  # text, title, the item (source, summary), language
    if not text.isascii():
        return True
    lower = text.lower()
    return any(word in lower for word, _ in needs)


def read_after(client: redis.Redis, key: str, after: str) -> Any:
    return client.xread({key: after}, count=50, block=1000)


def alert_passes(alert: dict, rule: str, severity: str) -> bool:
    if rule and alert["rule"]["id"] != rule:
        return False
    if severity in SEVERITIES:
        return SEVERITIES.index(alert["rule"]["severity"]) >= SEVERITIES.index(severity)
    return True


def alert_row(alert: dict) -> dict[str, Any]:
    """What the live alerts page shows of an alert (rendered as text by the page)."""
    return {
        "created": when(alert["created_at"]),
        "kind": alert["kind"],
        "severity": alert["rule"]["severity"],
        "rule": alert["rule"]["name"],
        "title": alert["item"]["title"],
        "source": alert["item"]["source"],
        "url": alert["item"]["url"],
        "story": alert["story"]["id"],
        "size": alert["story"]["size"],
    }


def stream_entries(reply: Any) -> list:
    if not reply:
        return []
    if isinstance(reply, dict):  # RESP3
        return next(iter(reply.values()))[0]
    return reply[0][1]


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison of whatever was sent (any characters) with a secret."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


def is_number(text: str | None) -> bool:
    try:
        return math.isfinite(float(text or ""))
    except ValueError:
        return False


def days_param(text: str | None) -> float:
    return min(max(float(text), 0.01), 365.0) if text and is_number(text) else 7.0
