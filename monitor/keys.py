"""Every Redis key name the monitor uses, in one place, under a configurable prefix."""

from __future__ import annotations

from dataclasses import dataclass

LSH_GROUP = 3  # leading hex digits of a bucket that name its hash (4,096 per band and generation)


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "monitor:"

    @property
    def alerts(self) -> str:
        """Stream of published alerts (DESIGN §4.2)."""
        return f"{self.prefix}alerts"

    @property
    def items(self) -> str:
        """Stream of polled entries waiting to be processed (consumer group `processors`)."""
        return f"{self.prefix}items"

    @property
    def items_dead(self) -> str:
        """Stream of entries that failed processing too often, with the reason."""
        return f"{self.prefix}items:dead"

    @property
    def feeds(self) -> str:
        """Hash of the feeds added at run time: URL -> JSON {name, interval, tags}."""
        return f"{self.prefix}feeds"

    @property
    def feeds_paused(self) -> str:
        """Set of the ids of paused feeds (`monitor feeds pause`), configured or imported."""
        return f"{self.prefix}feeds:paused"

    @property
    def retained(self) -> str:
        """Stream of processed items (text, metadata, story), kept for backfills."""
        return f"{self.prefix}retained"

    def backfilled(self, rule_id: str) -> str:
        """Marks an automatic backfill as done for one version of a rule."""
        return f"{self.prefix}backfilled:{rule_id}"

    def feed(self, feed_id: str) -> str:
        """Hash of a feed's polling state: url, etag, last_modified, next poll, errors…"""
        return f"{self.prefix}feed:{feed_id}"

    def feed_seen(self, feed_id: str) -> str:
        """Sorted set of the entry ids (g:GUID, u:canonical URL) a feed has given, by time."""
        return f"{self.prefix}feed:{feed_id}:seen"

    def lease(self, feed_id: str) -> str:
        """Held by the daemon polling a feed now; expires before the next interval."""
        return f"{self.prefix}lease:{feed_id}"

    def daemon(self, instance: str) -> str:
        """Heartbeat of a running daemon, with a TTL."""
        return f"{self.prefix}daemon:{instance}"

    def counter(self, stream: str) -> str:
        """How many entries were ever added to `stream`; each entry carries its number in
        the field `seq`, so a group's lag is a subtraction (Redis < 7 has no `lag`)."""
        return f"{stream}:seq"

    @property
    def alerts_dead(self) -> str:
        """Stream of alerts a consumer group could not handle, with the reason."""
        return f"{self.prefix}alerts:dead"

    def alerts_requeued(self, group: str) -> str:
        """Stream of dead letters put back for one consumer group (`consume --requeue`),
        read by that group before the alerts stream."""
        return f"{self.prefix}alerts:requeued:{group}"

    def alert_seen(self, alert_id: str) -> str:
        """Marks an alert id as published, so a repeat publishes nothing."""
        return f"{self.prefix}alert:{alert_id}"

    def entry(self, item_id: str) -> str:
        """Hash of a processed item: story, outcome, fingerprint, source metadata."""
        return f"{self.prefix}item:{item_id}"

    def canonical(self, url_hash: str) -> str:
        """Canonical URL -> the id of the first item seen with it."""
        return f"{self.prefix}url:{url_hash}"

    def lsh(self, generation: int) -> str:
        """Prefix of one generation's LSH bucket hashes. The dedup scripts append
        band .. ":" .. the bucket's first LSH_GROUP hex digits; in each hash, field = the rest
        of the bucket, value = the ids hashed there, comma-joined. (A small hash per bucket
        group packs ~5x tighter than a set per bucket.)"""
        return f"{self.prefix}lsh:g{generation}:"

    def df(self, generation: int) -> str:
        """Hash of one generation's document frequencies: term -> originals that had it."""
        return f"{self.prefix}df:g{generation}"

    def term(self, term: str) -> str:
        """Sorted set of the latest item ids carrying a salient term, scored by time (the
        dedup scripts build these names as term("") .. term)."""
        return f"{self.prefix}term:{term}"

    def story(self, story_id: str) -> str:
        """Sorted set of the items of a story, scored by time."""
        return f"{self.prefix}story:{story_id}"

    def story_summary(self, story_id: str) -> str:
        """Hash of a story's summary for same-story decisions: size, oldest and newest report
        time, centroid (JSON of summed term weights, its heaviest terms), names and figures
        ("|"-joined). The dedup scripts build these names as story_summary("") .. id."""
        return f"{self.prefix}summary:{story_id}"

    def story_alerts(self, story_id: str) -> str:
        """Hash `rule:kind` -> id of the item that claimed that alert for the story."""
        return f"{self.prefix}story:{story_id}:alerts"

    def sink_told(self, sink: str, story_id: str) -> str:
        """Set of the report URLs of a story a sink has sent people, so that its next
        message (an update) says what is new to them; expires."""
        return f"{self.prefix}sink:{sink}:told:{story_id}"

    def digest_window(self, sink: str, start: int) -> str:
        """Hash of the alerts of one digest window of a sink: alert id -> alert JSON."""
        return f"{self.prefix}digest:{sink}:w:{start}"

    def digest_windows(self, sink: str) -> str:
        """Sorted set of a sink's digest windows holding alerts, not yet sent (by start)."""
        return f"{self.prefix}digest:{sink}:waiting"

    def digest_sent(self, sink: str) -> str:
        """Hash of a sink's digest windows sent: start -> JSON {sent_at, alerts, stories}."""
        return f"{self.prefix}digest:{sink}:sent"

    def digest_lock(self, sink: str) -> str:
        """Held by the forwarder sending a sink's digests (expires)."""
        return f"{self.prefix}digest:{sink}:lock"

    @property
    def desk_stories(self) -> str:
        """Sorted set of the stories of retained reports, by their latest report (the desk)."""
        return f"{self.prefix}desk:stories"

    def desk_story(self, story_id: str) -> str:
        """List of a story's retained reports: "<retained entry id>\t<JSON>" (the desk)."""
        return f"{self.prefix}desk:story:{story_id}"

    def mutes(self, rule_id: str) -> str:
        """Set of "story:<id>" / "source:<name>" for which a rule raises no alert (the desk)."""
        return f"{self.prefix}mutes:{rule_id}"

    @property
    def pattern(self) -> str:
        """Matches every key of this prefix (for --fresh)."""
        return f"{self.prefix}*"
