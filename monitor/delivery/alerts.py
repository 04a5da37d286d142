"""Building alert documents (their fields: docs/alert.schema.json). Pure: everything it
needs is passed in."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from monitor.model import Addition, AlertKind, Article, Item, RuleMatch, Source, alert_id
from monitor.rules import Rule

SCHEMA = "monitor.alert/1"
EXCERPT_CHARS = 300


def rfc3339(when: datetime | None) -> str | None:
    if when is None:
        return None
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return flat[:limit].rsplit(" ", 1)[0] + "…"


def build_alert(
    *,
    kind: AlertKind,
    rule: Rule,
    match: RuleMatch,
    story_id: str,
    story_size: int,
    sources: Sequence[Source],
    item: Item,
    article: Article,
    url: str,
    now: datetime,
    backfill: bool = False,
    update: int = 1,
    wires: tuple[str, ...] = (),
    breaking: dict[str, Any] | None = None,
    adds: Sequence[Addition] = (),
) -> dict[str, Any]:
    """An alert document; `adds` (what the report adds to its story) goes on updates."""
    alert: dict[str, Any] = {
        "schema": SCHEMA,
        "id": alert_id(rule.id, story_id, kind, update),
        "kind": str(kind),
        "created_at": rfc3339(now),
        "rule": {
            "id": rule.id,
            "name": rule.name,
            "severity": rule.severity,
            **({"tags": list(rule.tags)} if rule.tags else {}),
        },
        "story": {
            "id": story_id,
            "size": story_size,
            "wires": sorted({w for s in sources for w in s.wires} | set(wires)),
            "sources": [
                {
                    "source": s.source,
                    "url": s.url,
                    "title": s.title,
                    "published": rfc3339(datetime.fromisoformat(s.published))
                    if s.published
                    else None,
                }
                for s in sources
            ],
        },
        "item": {
            "guid": item.guid,
            "url": url,
            "title": item.title or article.title,
            "source": item.source,
            "published": rfc3339(item.published or article.published),
            "language": article.language or None,
            "excerpt": excerpt(article.text or item.summary),
            "text_from": article.text_from,
            "wires": list(wires),
        },
        "matches": [{"field": h.field, "term": h.term, "snippet": h.snippet} for h in match.hits],
        "score": match.score,
    }
    if breaking is not None:
        alert["breaking"] = breaking  # the window's counts, the baseline, the sources
    if kind is AlertKind.UPDATE:
        alert["adds"] = [a.to_json() for a in adds]
    if backfill:
        alert["backfill"] = True  # raised by `monitor rules backfill`, not live
    return alert
