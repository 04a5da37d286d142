"""`monitor search QUERY`: a query in the rule language over everything retained."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitor.cli.output import Command, clip, counted, iso_time
from monitor.config import Settings
from monitor.errors import MonitorError
from monitor.pipeline import runtime
from monitor.pipeline.search import search
from monitor.retained.items import Retained
from monitor.rules import Rule, ad_hoc_rule, load_rules
from monitor.rules.query import And, Field, term
from monitor.units import parse_duration


def register(commands: Any, command: Command) -> None:
    p = command(commands, "search", "search every retained item with a query in the rule language")
    p.add_argument("query", help='the query, as in a rule: kim AND (treaty OR "strategic pact")')
    p.add_argument("--since", help="processed since: a duration ago (90m, 3d) or a date (ISO)")
    p.add_argument("--until", help="processed until: a duration ago or a date (ISO)")
    p.add_argument("--source", help='only from this source (its name\'s words, as source:"...")')
    p.add_argument("--story", help="only reports of this story (its id)")
    p.add_argument("--limit", type=int, default=20, help="matches shown, newest first (default 20)")
    p.add_argument("--json", action="store_true", help="one JSON object per match")
    p.add_argument("--rules", type=Path, help="rules directory, for its aliases (default rules/)")
    p.set_defaults(run=cmd_search)


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    """Exit 0 with matches, 1 without; 2 for a bad query or option."""
    aliases = load_rules(settings.rules_dir).aliases if settings.rules_dir.is_dir() else {}
    rule = _rule(args.query, aliases, args.source)
    since, until = _when(args.since, "--since"), _when(args.until, "--until")
    if args.limit < 1:
        raise MonitorError("--limit: expected a number of at least 1")
    with runtime.redis_client(settings) as client:
        retained = runtime.retained_items(client, settings)
        found = search(rule, retained, since=since, until=until, story=args.story or "",
                       shown=args.limit, per_story=False)  # fmt: skip
    for kept, match in found.matches:
        if args.json:
            print(json.dumps(_match_json(kept, match.hits), ensure_ascii=False))
            continue
        when = kept.item.time.isoformat() if kept.item.time else iso_time(kept.processed_at)
        print(f"{when}  {kept.item.source}: {clip(kept.item.title or kept.article.title, 70)}")
        print(f"  {kept.url}  (story {kept.placement.story_id[:8]}, {kept.placement.outcome})")
        for hit in match.hits[:3]:
            print(f"    {hit.field}: {hit.term} — {hit.snippet}")
    if not args.json:
        at_least = "" if found.complete else "at least "
        print(
            f"{at_least}{counted(found.count, 'match', 'matches')} among "
            f"{counted(found.searched, 'retained item')}"
            + (f", newest {len(found.matches)} shown" if found.count > len(found.matches) else "")
            if found.count
            else f"no match among {counted(found.searched, 'retained item')}"
        )
    if found.unindexed:
        print(
            "monitor: items retained before the search index existed are not searched "
            "(they leave the retained stream within retention_days)",
            file=sys.stderr,
        )
    return 0 if found.count else 1


def _rule(query: str, aliases: dict[str, Any], source: str | None) -> Rule:
    rule = ad_hoc_rule(query, aliases)
    if source:
        try:
            scoped = Field("source", term(source))
        except MonitorError as exc:
            raise MonitorError(f"--source: {exc}") from exc
        rule = dataclasses.replace(rule, node=And((rule.node, scoped)))
    return rule


def _when(text: str | None, option: str) -> float | None:
    """Unix seconds from a duration ago or an ISO date (UTC unless it says otherwise)."""
    if text is None:
        return None
    try:
        return time.time() - parse_duration(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise MonitorError(
            f"{option}: expected a duration (90m, 3d) or a date (2026-12-01), got {text!r}"
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _match_json(kept: Retained, hits: Any) -> dict[str, Any]:
    when = kept.item.time
    return {
        "item": kept.item.id,
        "story": kept.placement.story_id,
        "title": kept.item.title or kept.article.title,
        "source": kept.item.source,
        "url": kept.url,
        "time": when.isoformat() if when else iso_time(kept.processed_at),
        "matches": [{"field": h.field, "term": h.term, "snippet": h.snippet} for h in hits],
    }
