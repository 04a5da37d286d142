"""What the desk makes of what it is sent and what it shows live: the alert filters, an
alert as a live row, and the small parsers of query values."""

from __future__ import annotations

import math
from typing import Any

from monitor.rules.model import SEVERITIES
from monitor.web.render import when

__all__ = ["SEVERITIES", "alert_passes", "alert_row", "days_param", "is_number", "shown"]


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


def is_number(text: str | None) -> bool:
    try:
        return math.isfinite(float(text or ""))
    except ValueError:
        return False


def days_param(text: str | None) -> float:
    return min(max(float(text), 0.01), 365.0) if text and is_number(text) else 7.0


def shown(text: str, limit: int = 40) -> str:
    """What a refusal quotes of a value sent: its repr, cut to `limit` characters (a
    query string may hold megabytes; the message stays one short line)."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "…"
