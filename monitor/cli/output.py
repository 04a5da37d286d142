"""What the commands print: tables for people, JSON lines for programs."""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from monitor.units import counted

if TYPE_CHECKING:
    from monitor.pipeline.process import Processed
    from monitor.pipeline.replay import Summary

# How a command module adds a subcommand: (group, name, help) -> its parser.
Command = Callable[[Any, str, str], argparse.ArgumentParser]


def iso_time(ts: float) -> str | None:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds") if ts else None


def print_feeds(rows: list[dict[str, Any]]) -> None:
    """One row per feed; a failing feed's last error whole, on the line below it (wrapped
    to the terminal's width, on one)."""
    header = ("feed", "last poll (UTC)", "status", "new", "errors", "next poll (UTC)", "url")
    lines: list[tuple[str, ...]] = [header]
    errors: list[str] = [""]
    for r in rows:
        lines.append(
            (
                clip(r["name"] or r["id"], 24),
                (r["last_poll"] or "never")[:19].replace("T", " "),
                "paused" if r["paused"] else str(r["status"] or "-"),
                str(r["new"]),
                str(r["errors"]),
                (r["next_poll"] or "-")[:19].replace("T", " "),
                r["url"],
            )
        )
        errors.append(r["last_error"] or "")
    widths = [max(len(row[i]) for row in lines) for i in range(len(header) - 1)]
    width = terminal_width()
    for row, error in zip(lines, errors, strict=True):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])
        if error:
            text = f"  last error: {error}"
            print(textwrap.fill(text, width, subsequent_indent="    ") if width else text)


def item_json(item, result: Processed | None, error: str) -> dict[str, Any]:
    if result is None:
        return {
            "id": item.id,
            "guid": item.guid,
            "url": item.url,
            "title": item.title,
            "source": item.source,
            "error": error,
        }
    p = result.placement
    return {
        "id": item.id,
        "guid": item.guid,
        "url": result.url,
        "title": item.title or result.article.title,
        "source": item.source,
        "published": item.published.isoformat() if item.published else None,
        "first_seen": item.first_seen.isoformat() if item.first_seen else None,
        "language": result.article.language or None,
        "story_id": p.story_id,
        "duplicate_of": p.duplicate_of,
        "dedup": str(p.outcome),
        "similarity": round(p.similarity, 3),
        "rules": [m.rule_id for m in result.matches],
        "alerts": result.alerts,
        "alert_suppressed": result.alert_suppressed or None,
        "alerts_held": result.alerts_held,
        "wires": list(result.wires),
        "adds": [a.to_json() for a in result.adds],
        "text_from": result.article.text_from,
        "warnings": result.warnings,
    }


def _held(result: Processed) -> str:
    """Why a matching original raised no alert, in a word (an update held in the story's
    quiet period: "held")."""
    held = result.alert_suppressed if result.matches else None
    if held:
        return " (old)" if held.startswith("older") else " (undated)"
    reasons = result.alerts_held.values()
    if not result.alerts and any(why.startswith("update held") for why in reasons):
        return " (held)"
    return ""


# The replay table's columns that give way, in turn, to fit a terminal: index -> least width.
_SHRINK = {6: 16, 4: 12, 1: 12}
_CAPS = {1: 24, 4: 32, 6: 48}  # source, rules and title are cut there in any case


def print_table(rows, summary: Summary, *, width: int | None = None) -> None:
    """The replay's rows and summary. `width`: the terminal's, which no row goes beyond
    (source, rules and title cut); None when not a terminal."""
    header = ("#", "source", "dedup", "story", "rules", "alerts", "title")
    lines = [header]
    for n, (item, result, error) in enumerate(rows, 1):
        if result is None:
            lines.append((str(n), item.source, "ERROR", "-", "-", "-", error))
            continue
        lines.append(
            (
                str(n),
                item.source,
                str(result.placement.outcome),
                result.placement.story_id[:8],
                ",".join(m.rule_id for m in result.matches) or "-",
                str(len(result.alerts)) + _held(result),
                item.title or result.article.title,
            )
        )
    widths = [
        min(max(len(row[i]) for row in lines), _CAPS.get(i, 10**6)) for i in range(len(header))
    ]
    if width:
        for i, least in _SHRINK.items():
            over = sum(widths) + 2 * (len(widths) - 1) - width
            if over <= 0:
                break
            widths[i] = max(least, widths[i] - over)
    for row in lines:
        cells = [clip(c, w) for c, w in zip(row, widths, strict=True)]
        print(
            "  ".join(c.ljust(w) for c, w in zip(cells[:-1], widths, strict=False))
            + "  "
            + cells[-1]
        )
    s = summary.as_dict()
    print()
    print(
        f"{counted(s['items'], 'item')}, {counted(s['stories'], 'story', 'stories')} "
        f"({s['new_stories']} new), "
        f"{counted(s['near_duplicates'], 'near-duplicate')}, "
        f"{s['same_items'] + s['seen_before']} already seen, "
        f"{counted(s['alerts_published'], 'alert')} published, {counted(s['errors'], 'error')}"
    )
    if s["text_from_summary"]:
        reasons = list(s["pages_unread"].items())
        shown = ", ".join(f'{count} "{reason}"' for reason, count in reasons[:3])
        print(
            f"{s['text_from_summary']} of {counted(s['items'], 'item')} matched on the feed's "
            f"text, their page unread: {shown}" + (", …" if len(reasons) > 3 else "")
        )
    for reason, count in s["alerts_suppressed"].items():
        print(f"no alert for {counted(count, 'matching report')}: {reason}")
    if s["unreadable_files"]:
        total = s["files"] + len(s["unreadable_files"])
        print(
            f"{len(s['unreadable_files'])} of {counted(total, 'file')} could not be read and "
            "were skipped (each named on stderr)"
        )
    if s["rules_matched"]:
        width = max(len(r) for r in s["rules_matched"])
        print(f"\n  {'rule'.ljust(width)}  matched  alerts")
        for rule_id, count in s["rules_matched"].items():
            alerts = s["alerts_per_rule"].get(rule_id, 0)
            print(f"  {rule_id.ljust(width)}  {count:>7}  {alerts:>6}")
    print("\nRead the alerts with: monitor consume --from-start")


def terminal_width() -> int | None:
    """The terminal's width in columns when stdout is one, else None (a pipe, a file)."""
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns if sys.stdout.isatty() else None
    except (OSError, ValueError):
        return None


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def print_alert(alert: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(alert, ensure_ascii=False), flush=True)
        return
    rule, item, story = alert["rule"], alert["item"], alert["story"]
    kind = f"{alert['kind']} (backfill)" if alert.get("backfill") else alert["kind"]
    print(
        f"[{rule['severity']}] {rule['name']} — {kind} · story {story['id'][:8]} "
        f"({counted(story['size'], 'item')}) · {alert['created_at']}"
    )
    print(f"  {item['source']}: {item['title']}")
    print(f"  {dated(item.get('published'), alert['created_at'])} · {item['url']}")
    if alert.get("backfill"):
        # raised now for an older report: its time is the backfill's, not the news's
        print("  (a backfill: raised by `monitor rules backfill` over retained items, not live)")
    if item.get("text_from") == "summary":
        print("  (matched on the feed's summary: the page could not be fetched)")
    if isinstance(why := alert.get("breaking"), dict):
        baseline = why.get("baseline") or {}
        print(
            f"  breaking: {why.get('reports')} reports from {len(why.get('sources') or [])} "
            f"sources in {why.get('window_minutes')} min, {baseline.get('expected')} expected "
            f"(story {baseline.get('story_per_hour')}/h, stream "
            f"{baseline.get('stream_per_story_hour')}/story-hour; P = {why.get('p_value')})"
        )
    # one line per query term (an alias counts once), its first hit
    shown: dict[str, dict] = {}
    for m in alert["matches"]:
        shown.setdefault(m["term"].split(":", 1)[0] if m["term"].startswith("@") else m["term"], m)
    for m in shown.values():
        print(f"  {m['field']}: {m['term']} — {m['snippet']}")
    others = [s["source"] for s in story["sources"] if s["url"] != item["url"]]
    if others:
        print(f"  also reported by: {', '.join(dict.fromkeys(others))}")
    print(flush=True)


def dated(published: str | None, alerted: str) -> str:
    """The article's own date and its age when the alert was raised."""
    if not published:
        return "undated"
    when = datetime.fromisoformat(published.replace("Z", "+00:00")).astimezone(UTC)
    age = (datetime.fromisoformat(alerted.replace("Z", "+00:00")) - when).total_seconds()
    return f"published {when:%Y-%m-%d %H:%M} UTC ({span(age)} before the alert)"


def span(seconds: float) -> str:
    if seconds < 0:
        return "0 min"
    for unit, size in (("years", 365 * 86400), ("days", 86400), ("h", 3600)):
        if seconds >= 2 * size or (unit == "h" and seconds >= size):
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds // 60)} min"


def print_dead(letter: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(letter, ensure_ascii=False), flush=True)
        return
    alert = letter["alert"] if isinstance(letter["alert"], dict) else {}
    where = f"group {letter.get('group')}, consumer {letter.get('consumer', '-')}"
    deliveries = letter.get("deliveries")
    tried = (
        counted(deliveries, "delivery", "deliveries")
        if isinstance(deliveries, int)
        else "? deliveries"
    )
    print(f"{letter['entry']}  {where}, {tried}: {letter.get('reason')}")
    if alert:
        print(
            f"  {alert.get('id')} {alert.get('kind')} {alert.get('rule', {}).get('id')}: "
            f"{alert.get('item', {}).get('title')}"
        )


def story_json(story: Any) -> dict[str, Any]:
    return {
        "story_id": story.story_id,
        "already_alerted": story.already_alerted,
        "alerts": story.alerts,
        "items": [
            {
                "guid": kept.item.guid,
                "title": kept.item.title,
                "source": kept.item.source,
                "dedup": str(kept.placement.outcome),
                "score": match.score,
                "matches": [
                    {"field": h.field, "term": h.term, "snippet": h.snippet} for h in match.hits
                ],
            }
            for kept, match in story.matches
        ],
    }


def say_if_none(shown: int | bool, args: argparse.Namespace, message: str) -> None:
    """An empty answer says so to a person at a terminal; scripts (--json, pipes) get
    nothing to parse around."""
    if not shown and not args.json and sys.stdout.isatty():
        print(message)
