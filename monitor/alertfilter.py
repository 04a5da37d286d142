"""Which alerts a sink takes: a filter over the alert document, pure.

Every criterion that is given must hold (AND); within one, any listed value will do (OR).
An empty criterion takes everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

SEVERITIES = ("low", "medium", "high", "critical")
KINDS = ("new", "update", "breaking", "backfill")
UPDATES = ("always", "when-new")  # which updates: all, or those whose report adds something


def alert_kind(alert: dict[str, Any]) -> str:
    """new, update, breaking, or backfill (raised by `monitor rules backfill`, whatever its
    kind)."""
    return "backfill" if alert.get("backfill") else str(alert.get("kind", ""))


@dataclass(frozen=True, slots=True, kw_only=True)
class Filter:
    rules: tuple[str, ...] = ()  # rule ids or globs: "dprk-*"
    min_severity: str = ""  # low, medium, high, critical
    tags: tuple[str, ...] = ()  # rule tags (`tags:` in the rule file)
    sources: tuple[str, ...] = ()  # source names or domains (a domain covers its subdomains)
    languages: tuple[str, ...] = ()  # ISO 639-1; an alert of unknown language passes
    kinds: tuple[str, ...] = ()  # new, update, breaking, backfill
    updates: str = "always"  # "when-new": only updates whose report adds something

    def __post_init__(self) -> None:
        if self.updates not in UPDATES:
            raise ValueError(f"updates: expected always or when-new, got {self.updates!r}")
        if self.min_severity and self.min_severity not in SEVERITIES:
            raise ValueError(
                f"min_severity: expected one of {', '.join(SEVERITIES)}, got {self.min_severity!r}"
            )
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown:
            raise ValueError(
                f"kinds: expected new, update, breaking or backfill, got {unknown[0]!r}"
            )

    def matches(self, alert: dict[str, Any]) -> bool:
        rule = alert.get("rule") or {}
        item = alert.get("item") or {}
        if self.rules and not any(fnmatchcase(str(rule.get("id", "")), p) for p in self.rules):
            return False
        if self.min_severity:
            severity = str(rule.get("severity", ""))
            rank = SEVERITIES.index(severity) if severity in SEVERITIES else -1
            if rank < SEVERITIES.index(self.min_severity):
                return False
        if self.tags and not set(self.tags) & set(rule.get("tags") or ()):
            return False
        if self.sources and not _from_source(item, self.sources):
            return False
        language = item.get("language")
        if self.languages and language and language not in self.languages:
            return False
        if self.updates == "when-new" and alert.get("kind") == "update" and alert.get("adds") == []:
            return False  # an update whose report adds nothing to the story
        return not (self.kinds and alert_kind(alert) not in self.kinds)

    def describe(self) -> str:
        """One line for people: what this filter lets through."""
        parts = [
            f"{name} {', '.join(values)}"
            for name, values in (
                ("rules", self.rules),
                ("tags", self.tags),
                ("sources", self.sources),
                ("languages", self.languages),
                ("kinds", self.kinds),
            )
            if values
        ]
        if self.min_severity:
            parts.insert(0, f"severity ≥ {self.min_severity}")
        if self.updates == "when-new":
            parts.append("updates when the report adds something")
        return "; ".join(parts) or "every alert"


def _from_source(item: dict[str, Any], wanted: tuple[str, ...]) -> bool:
    name = str(item.get("source", "")).casefold()
    host = (urlsplit(str(item.get("url", ""))).hostname or "").casefold()
    for entry in wanted:
        entry = entry.casefold()
        if entry == name or host == entry or host.endswith("." + entry):
            return True
    return False
