"""Every Redis key name the monitor uses, in one place, under a configurable prefix.

Laid out for Redis Cluster, and the same on one server. A cluster puts each key in one of
16,384 slots by a hash of its name — of the part between the first `{` and the next `}`
(its hash tag) if it has one — and spreads the slots over its masters. A script or a
MULTI may only touch keys of one slot. So keys that one script or transaction touches
share a tag, and every other key has none and lands wherever its name hashes:

| unit of work (one slot)            | keys                                                   |
|------------------------------------|--------------------------------------------------------|
| publishing an alert: claim, marker,| `alerts` (the stream, untagged: its name is public),   |
| XADD, counter (claim_publish.lua); | and `{<prefix>alerts}:` seq, alert:<id>, claims:<story>,|
| releasing staged alerts; dead-     | staged, dead, requeued:<group> — tagged with the       |
| lettering, requeueing              | stream's name                                          |
| appending items, dead-lettering    | `items`; `{<prefix>items}:` seq, dead                  |
| retaining an item (retain.lua)     | `retained`; `{<prefix>retained}:` seq, docs:<block>    |
| a story's summary update           | `story:{<id>}`, `summary:{<id>}`, `activity:{<id>}`    |
| placing an original on a cluster   | `{df}:` g<generation> (document frequencies), log,     |
| (the commit: dedup/commit.lua)     | flight — the placement log of dedup/spread.py          |
| a sink's digest windows            | `digest:{<sink>}:` w:<start>, waiting, sent, lock      |

Everything else is one key per operation and untagged, so it spreads by its own name: feed
state, seen entries and leases per feed (`feed:<id>`, `feed:<id>:seen`, `lease:<id>`: no
command needs two of them at once), items (`item:<id>`), canonical URLs, LSH bucket
groups, term postings, the search index's postings and words, desk keys, mutes, heartbeats.

Hot keys (one key, so one master, whatever the cluster's size): the `items` stream (every
new entry and every processing read and ack), the `alerts` slot (every claim asked by a
matching item, every alert published and read), `retained` and `desk:stories` (one write
per processed item) and, on a cluster, the `{df}` slot (every item reads its terms'
frequencies; every original counts them and commits there). Each costs a few commands
per item: the dedup index, which is most of the memory and work, spreads.
"""

from __future__ import annotations

from dataclasses import dataclass

LSH_GROUP = 3  # leading hex digits of a bucket that name its hash (4,096 per band and generation)


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "monitor:"

    def beside(self, stream: str, name: str) -> str:
        """A key in the slot of `stream` (a stream whose name has no tag hashes whole: a
        key tagged with that name shares its slot), still under the prefix."""
        return f"{self.prefix}{{{stream}}}:{name}"

    @property
    def alerts(self) -> str:
        """Stream of published alerts (docs/alert.schema.json)."""
        return f"{self.prefix}alerts"

    @property
    def items(self) -> str:
        """Stream of polled entries waiting to be processed (consumer group `processors`)."""
        return f"{self.prefix}items"

    @property
    def items_dead(self) -> str:
        """Stream of entries that failed processing too often, with the reason (in the
        items stream's slot: dead-lettering acks there in the same transaction)."""
        return self.beside(self.items, "dead")

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

    def retained_docs(self, block: int) -> str:
        """String of one block of the search index's documents: record n (32 bytes at
        n * 32) says which retained entry document `block * SEARCH_BLOCK + n` is, its report
        time, outcome and story (in the retained stream's slot: written with the entry)."""
        return self.beside(self.retained, f"docs:{block}")

    def search_postings(self, block: int) -> str:
        """Prefix of one block's postings: + a token (a field letter and a folded word), a
        string of the documents that hold it, 2 bytes each (their number in the block)."""
        return f"{self.prefix}search:{block}:"

    def search_words(self, block: int, field: str) -> str:
        """Sorted set of the words of one field in one block's postings (all scores 0, for
        wildcard lookups by lexical range)."""
        return f"{self.prefix}words:{block}:{field}"

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
        return self.beside(stream, "seq")

    @property
    def alerts_dead(self) -> str:
        """Stream of alerts a consumer group could not handle, with the reason."""
        return self.beside(self.alerts, "dead")

    @property
    def alerts_staged(self) -> str:
        """Stream of alerts published but not yet shown to consumers: each moves to the
        alerts stream once the writes behind it are on disk (`alerts.durable_hold`)."""
        return self.beside(self.alerts, "staged")

    def alerts_requeued(self, group: str) -> str:
        """Stream of dead letters put back for one consumer group (`consume --requeue`),
        read by that group before the alerts stream."""
        return self.beside(self.alerts, f"requeued:{group}")

    def alert_seen(self, alert_id: str) -> str:
        """Marks an alert id as published, so a repeat publishes nothing (in the alerts
        stream's slot: marker and XADD are one script)."""
        return self.beside(self.alerts, f"alert:{alert_id}")

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
        return f"{self.prefix}{{df}}:g{generation}"

    @property
    def df_pattern(self) -> str:
        """A SCAN pattern for every generation's `df` hash."""
        return f"{self.prefix}{{df}}:g*"

    @property
    def placements(self) -> str:
        """Stream of the originals placed on a cluster (id, query terms), read by the commit
        of dedup/spread.py to find placements that raced its decision; short-lived."""
        return f"{self.prefix}{{df}}:log"

    @property
    def placing(self) -> str:
        """Hash of the placements committed but not yet written: log entry id -> expiry."""
        return f"{self.prefix}{{df}}:flight"

    def term(self, term: str) -> str:
        """Sorted set of the latest item ids carrying a salient term, scored by time (the
        dedup scripts build these names as term("") .. term)."""
        return f"{self.prefix}term:{term}"

    def story(self, story_id: str) -> str:
        """Sorted set of the items of a story, scored by time."""
        return f"{self.prefix}story:{{{story_id}}}"

    def story_summary(self, story_id: str) -> str:
        """Hash of a story's summary for same-story decisions: size, oldest and newest report
        time, centroid (JSON of summed term weights, its heaviest terms), names and figures
        ("|"-joined)."""
        return f"{self.prefix}summary:{{{story_id}}}"

    def story_activity(self, story_id: str) -> str:
        """Hash of a story's activity by report time (dedup/activity.lua): per bucket of
        report time, its reports and distinct sources; bounded, expires with the story."""
        return f"{self.prefix}activity:{{{story_id}}}"

    @property
    def active_stories(self) -> str:
        """Sorted set of the stories by their newest report time (what `monitor top` ranks),
        trimmed to the dedup window behind the newest report."""
        return f"{self.prefix}activity:stories"

    def activity_day(self, day: int | str) -> str:
        """Hash of the stream's activity in one day of report time (day = hours // 24):
        r<hour> -> reports, s<hour> -> stories with a report in that hour (the background
        of breaking); record.lua builds these names as activity_day("") .. day."""
        return f"{self.prefix}activity:d{day}"

    def story_facts(self, story_id: str) -> str:
        """String of the facts a story's reports carried so far: 4-byte hashes of their
        content words and figures, appended as reports join (what a report adds is measured
        against them)."""
        return f"{self.prefix}facts:{story_id}"

    def story_alerts(self, story_id: str) -> str:
        """Hash of a story's alert claims: `rule:new` -> the item that raised `new`, ... (in
        the alerts stream's slot: claim and publish are one script)."""
        return self.beside(self.alerts, f"claims:{story_id}")

    def sink_told(self, sink: str, story_id: str) -> str:
        """Set of the report URLs of a story a sink has sent people, so that its next
        message (an update) says what is new to them; expires."""
        return f"{self.prefix}sink:{sink}:told:{story_id}"

    def digest_window(self, sink: str, start: int) -> str:
        """Hash of the alerts of one digest window of a sink: alert id -> alert JSON."""
        return f"{self.prefix}digest:{{{sink}}}:w:{start}"

    def digest_windows(self, sink: str) -> str:
        """Sorted set of a sink's digest windows holding alerts, not yet sent (by start)."""
        return f"{self.prefix}digest:{{{sink}}}:waiting"

    def digest_sent(self, sink: str) -> str:
        """Hash of a sink's digest windows sent: start -> JSON {sent_at, alerts, stories}."""
        return f"{self.prefix}digest:{{{sink}}}:sent"

    def digest_lock(self, sink: str) -> str:
        """Held by the forwarder sending a sink's digests (expires)."""
        return f"{self.prefix}digest:{{{sink}}}:lock"

    @property
    def desk_stories(self) -> str:
        """Sorted set of the stories of retained reports, by their latest report (the desk)."""
        return f"{self.prefix}desk:stories"

    def desk_story(self, story_id: str) -> str:
        """List of a story's retained reports: "<retained entry id>\t<JSON>" (the desk)."""
        return f"{self.prefix}desk:story:{story_id}"

    def desk_held(self, story_id: str) -> str:
        """Hash of a story's reports whose rules raised no alert: item id -> JSON, rule id ->
        why ("update held: quiet until 14:07 UTC", "muted on the desk") (the desk)."""
        return f"{self.prefix}desk:held:{story_id}"

    def desk_session(self, digest: str) -> str:
        """Hash of one signed-in desk session, named by the SHA-256 of its cookie's id:
        token (an HMAC of the id keyed by the token it was opened with), csrf; it expires
        after `web.session_hours`, and signing out deletes it."""
        return f"{self.prefix}desk:session:{digest}"

    def desk_sign_ins(self, address: str) -> str:
        """String: how many sign-ins a client address tried this window, with the window's
        expiry (the desk refuses the address past its limit of failures)."""
        return f"{self.prefix}desk:sign-in:{address}"

    def mutes(self, rule_id: str) -> str:
        """Set of "story:<id>" / "source:<name>" for which a rule raises no alert (the desk)."""
        return f"{self.prefix}mutes:{rule_id}"

    @property
    def pattern(self) -> str:
        """Matches every key of this prefix (for --fresh)."""
        return f"{self.prefix}*"
