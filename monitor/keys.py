"""Every Redis key name the monitor uses, in one place, under a configurable prefix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "monitor:"

    @property
    def alerts(self) -> str:
        """Stream of published alerts (DESIGN §4.2)."""
        return f"{self.prefix}alerts"

    def alert_seen(self, alert_id: str) -> str:
        """Marks an alert id as published, so a repeat publishes nothing."""
        return f"{self.prefix}alert:{alert_id}"

    def entry(self, item_id: str) -> str:
        """Hash of a processed item: story, outcome, fingerprint, source metadata."""
        return f"{self.prefix}item:{item_id}"

    def canonical(self, url_hash: str) -> str:
        """Canonical URL -> the id of the first item seen with it."""
        return f"{self.prefix}url:{url_hash}"

    def lsh_band(self, band: int, bucket: str) -> str:
        """Set of item ids whose MinHash band `band` hashed to `bucket`."""
        return f"{self.prefix}lsh:{band}:{bucket}"

    def term(self, term: str) -> str:
        """Sorted set of item ids carrying a salient term, scored by time."""
        return f"{self.prefix}term:{term}"

    def story(self, story_id: str) -> str:
        """Sorted set of the items of a story, scored by time."""
        return f"{self.prefix}story:{story_id}"

    def story_alerts(self, story_id: str) -> str:
        """Hash `rule:kind` -> id of the item that claimed that alert for the story."""
        return f"{self.prefix}story:{story_id}:alerts"

    @property
    def pattern(self) -> str:
        """Matches every key of this prefix (for --fresh)."""
        return f"{self.prefix}*"
