"""The text people read: an alert, or a digest window, as a title and a Markdown body.

Apprise turns the Markdown into what each service takes (HTML e-mail, Slack mrkdwn, plain
text for SMS-like targets). Pure: the alert documents in, strings out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from monitor.alertfilter import SEVERITIES, alert_kind

MAX_SNIPPETS = 3


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    body: str  # Markdown


def _when(stamp: str | None) -> str:
    if not stamp:
        return "undated"
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return stamp
    return f"{when:%Y-%m-%d %H:%M} UTC"


def marked(snippet: str) -> str:
    """The matcher's «hit» marks, also in bold: the marks stay where Markdown is flattened
    to plain text (the text part of an e-mail, SMS-like targets)."""
    return " ".join(snippet.split()).replace("«", "**«").replace("»", "»**")


def other_sources(alert: dict[str, Any]) -> list[str]:
    """The story's other sources, by name, each once, oldest first."""
    item = alert.get("item") or {}
    own = item.get("source")
    names = [s.get("source", "") for s in (alert.get("story") or {}).get("sources", [])]
    return [n for n in dict.fromkeys(names) if n and n != own]


def also_reported(alert: dict[str, Any]) -> str:
    others = other_sources(alert)
    if not others:
        return ""
    wires = (alert.get("story") or {}).get("wires") or []
    count = f"{len(others)} source{'s' if len(others) != 1 else ''}"
    wire = f" (wires: {', '.join(wires)})" if wires else ""
    return f"Also reported by {count}{wire}: {', '.join(others)}"


def _snippets(alert: dict[str, Any]) -> list[str]:
    seen: dict[str, None] = {}
    for match in alert.get("matches") or []:
        snippet = marked(str(match.get("snippet", "")))
        if snippet and len(seen) < MAX_SNIPPETS:
            seen.setdefault(snippet)
    return list(seen)


def _name(rule: dict[str, Any]) -> str:
    return str(rule.get("name") or rule.get("id") or "unnamed rule")


def _label(rule: dict[str, Any]) -> str:
    return f"[{str(rule.get('severity') or 'alert').upper()}] {_name(rule)}"


def new_sources(alert: dict[str, Any], told: frozenset[str]) -> list[str]:
    """Names of the story's sources with a report not among `told` (URLs), each once."""
    reports = (alert.get("story") or {}).get("sources", [])
    return list(dict.fromkeys(s.get("source", "") for s in reports if s.get("url") not in told))


def alert_message(alert: dict[str, Any], told: frozenset[str] = frozenset()) -> Message:
    """`told`: URLs of the story's reports already sent to these readers (for an update,
    what changed is what they were not told)."""
    rule, item = alert.get("rule") or {}, alert.get("item") or {}
    story = alert.get("story") or {}
    kind = alert_kind(alert)
    headline = item.get("title") or item.get("url") or "(no title)"
    marks = {"update": " — update", "breaking": " — BREAKING"}
    title = f"{_label(rule)}{marks.get(kind, '')}: {headline}"
    paragraphs = [
        f"**{_name(rule)}** · severity {rule.get('severity') or 'unknown'} · "
        + {
            "new": "new story",
            "update": "update",
            "breaking": "breaking",
            "backfill": "from a backfill",
        }.get(kind, kind)
    ]
    if kind == "breaking" and isinstance(alert.get("breaking"), dict):
        paragraphs.append(breaking_line(alert["breaking"]))
    if kind == "update":
        fresh = [n for n in new_sources(alert, told) if n] if told else []
        changed = (
            f"new since the last message: {', '.join(fresh)}"
            if fresh
            else f"{item.get('source') or 'a new source'} reported it too"
        )
        size, sources = story.get("size", "?"), len(other_sources(alert)) + 1
        paragraphs.append(
            f"What changed: {changed}; the story now has {size} report{'' if size == 1 else 's'}"
            f" from {sources} source{'' if sources == 1 else 's'}."
        )
    paragraphs += [f"**{headline}**", f"{item.get('source', '')} · {_when(item.get('published'))}"]
    if also := also_reported(alert):
        paragraphs.append(also)
    paragraphs += [f"“{snippet}”" for snippet in _snippets(alert)]
    if item.get("url"):
        paragraphs.append(f"<{item['url']}>")  # an autolink: clickable in HTML and chat
    story_id = str(story.get("id", ""))[:12]
    paragraphs.append(f"Rule {rule.get('id')} · story {story_id} · alert {alert.get('id')}")
    # one paragraph each: Markdown would join consecutive lines into one
    return Message(title, "\n\n".join(paragraphs))


def breaking_line(breaking: dict[str, Any]) -> str:
    """What made a story break, in words: "Breaking: 9 reports from 7 sources in 60 minutes
    (1.2 expected)"."""
    sources = breaking.get("sources") or []
    baseline = breaking.get("baseline") or {}
    return (
        f"Breaking: {breaking.get('reports', '?')} reports from {len(sources)} sources in "
        f"{breaking.get('window_minutes', '?')} minutes ({baseline.get('expected', '?')} "
        f"expected): {', '.join(map(str, sources[:8]))}{' …' if len(sources) > 8 else ''}"
    )


def digest_message(sink: str, start: int, end: int, alerts: Sequence[dict[str, Any]]) -> Message:
    """One message for a window: per rule (most severe first), one line per story."""
    by_rule: dict[str, list[dict[str, Any]]] = {}
    for alert in alerts:
        by_rule.setdefault(str((alert.get("rule") or {}).get("id", "")), []).append(alert)

    def rank(rule_alerts: list[dict[str, Any]]) -> tuple[int, str]:
        rule = rule_alerts[0].get("rule") or {}
        severity = rule.get("severity")
        return (
            -(SEVERITIES.index(severity) if severity in SEVERITIES else -1),
            str(rule.get("name", "")),
        )

    total = len(
        {(rule, (a.get("story") or {}).get("id")) for rule, group in by_rule.items() for a in group}
    )
    until = _when(_iso(end))
    span = (
        f"{_when(_iso(start))} to {until[11:] if until[:10] == _when(_iso(start))[:10] else until}"
    )
    title = (
        f"Digest {span}: {total} stor{'y' if total == 1 else 'ies'}, "
        f"{len(by_rule)} rule{'s' if len(by_rule) != 1 else ''}"
    )
    lines = [f"Alerts of {span} for {sink}.", ""]
    for rule_alerts in sorted(by_rule.values(), key=rank):
        rule = rule_alerts[-1].get("rule") or {}
        grouped: dict[str, list[dict[str, Any]]] = {}
        for alert in rule_alerts:
            grouped.setdefault(str((alert.get("story") or {}).get("id", "")), []).append(alert)
        count = len(grouped)
        lines.append(f"## {_label(rule)} — {count} stor{'y' if count == 1 else 'ies'}")
        for story_alerts in grouped.values():
            first, last = story_alerts[0], story_alerts[-1]
            item = first.get("item") or {}
            updates = sum(1 for a in story_alerts if a.get("kind") == "update")
            extra = f" · +{updates} update{'s' if updates != 1 else ''}" if updates else ""
            if any(a.get("kind") == "breaking" for a in story_alerts):
                extra += " · BREAKING"
            also = also_reported(last)
            entry = [
                f"- **{item.get('title') or item.get('url')}** — {item.get('source', '')}, "
                f"{_when(item.get('published'))}{extra}"
            ]
            link = f"<{item['url']}>" if item.get("url") else ""
            entry += [f"  {text}" for text in (also, link) if text]
            lines.append("  \n".join(entry))  # Markdown hard breaks: one story, several lines
        lines.append("")
    return Message(title, "\n".join(lines).rstrip() + "\n")


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()
