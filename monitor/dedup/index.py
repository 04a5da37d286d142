"""The dedup index in Redis: places each item as seen / same item / near-duplicate /
same story / new story (DESIGN §4.4), and records which item claimed each alert.

Bounded in time: every key expires one window after its last write, and term and band
entries older than the window are trimmed, so memory follows the window, not history.
Candidate lookup is sub-linear: LSH buckets for near-duplicates, an inverted index of
salient terms for stories.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime

import redis

from monitor.dedup.fingerprint import (
    StoryTerms,
    band_buckets,
    cosine,
    decode_signature,
    encode_signature,
    features,
    jaccard,
    minhash,
    shingle_hashes,
    tfidf,
)
from monitor.dedup.wires import credited
from monitor.feeds import canonical_url
from monitor.keys import LSH_GROUP, Keys
from monitor.model import AlertKind, Article, Item, Outcome, Placement, stable_id

_DOCUMENTS = "#documents"  # field of a day's frequency hash: originals counted that day
QUERY_TERMS = 20  # terms of a new item used to look up candidates
TERM_FANOUT = 200  # most recent items read per term
STORY_CANDIDATES = 20  # candidates scored in full
MIN_SHARED_TERMS = 2
CONTAINMENT = 0.7  # share of the smaller text's 3-grams that makes a trimmed/padded copy
CONTAINED_JACCARD = 0.3

# Terms travel as one newline-joined argument, and counts come back as one string: a few
# hundred separate arguments and replies cost more to pack and parse than the work itself.
_COUNT_TERMS = """
local n = 0
for term in string.gmatch(ARGV[2], "[^\\n]+") do
  redis.call('HINCRBY', KEYS[1], term, 1)
  n = n + 1
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return n
"""

# One round trip instead of one command per band and term. KEYS: the day's band hashes,
# then the term sets; ARGV: id, now, horizon, ttl, bands, band ttl, then each band's field.
_INDEX_ITEM = """
local id, bands = ARGV[1], tonumber(ARGV[5])
for i = 1, #KEYS do
  if i <= bands then
    local field = ARGV[6 + i]
    local ids = redis.call('HGET', KEYS[i], field)
    redis.call('HSET', KEYS[i], field, ids and (ids .. ',' .. id) or id)
    redis.call('EXPIRE', KEYS[i], ARGV[6])
  else
    redis.call('ZADD', KEYS[i], ARGV[2], id)
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', ARGV[3])
    redis.call('EXPIRE', KEYS[i], ARGV[4])
  end
end
return #KEYS
"""

# Summed over the day buckets on the server: one reply for all terms and days.
_FREQUENCIES = """
local terms = {}
for term in string.gmatch(ARGV[1], "[^\\n]+") do terms[#terms + 1] = term end
local total = {}
for i = 1, #terms do total[i] = 0 end
for _, key in ipairs(KEYS) do
  local values = redis.call('HMGET', key, unpack(terms))
  for i = 1, #terms do
    if values[i] then total[i] = total[i] + tonumber(values[i]) end
  end
end
return table.concat(total, ",")
"""

# Story candidates, counted on the server: the items sharing at least ARGV[5] of the query
# terms (each term's ARGV[2] most recent postings after ARGV[1]), best first, at most ARGV[4],
# each with its fields. One round trip, and only a few ids come back, not thousands.
_STORY_CANDIDATES = """
local shared = {}
for i = 1, #KEYS do
  local ids = redis.call('ZREVRANGEBYSCORE', KEYS[i], '+inf', ARGV[1], 'LIMIT', 0, ARGV[2])
  for _, id in ipairs(ids) do shared[id] = (shared[id] or 0) + 1 end
end
shared[ARGV[3]] = nil
local best = {}
for id, n in pairs(shared) do
  if n >= tonumber(ARGV[5]) then best[#best + 1] = {id, n} end
end
table.sort(best, function(a, b)
  if a[2] ~= b[2] then return a[2] > b[2] end
  return a[1] < b[1]
end)
local found = {}
for i = 1, math.min(#best, tonumber(ARGV[4])) do
  local id = best[i][1]
  local f = redis.call('HMGET', ARGV[6] .. id, 'terms', 'story', 'published_ts')
  found[i] = {id, f[1], f[2], f[3]}
end
return found
"""

# Near-duplicate candidates: the ids in the item's LSH buckets on any day of the window,
# with their fingerprints. KEYS: band hashes, `days` per band; ARGV: the item's id, the entry
# key prefix, days, then each band's field.
_NEAR_CANDIDATES = """
local days, seen, found = tonumber(ARGV[3]), {[ARGV[1]] = true}, {}
for i = 1, #KEYS do
  local ids = redis.call('HGET', KEYS[i], ARGV[3 + math.ceil(i / days)])
  if ids then
    for id in string.gmatch(ids, "[^,]+") do
      if not seen[id] then
        seen[id] = true
        local f = redis.call('HMGET', ARGV[2] .. id, 'minhash', 'story', 'duplicate_of', 'shingles')
        found[#found + 1] = {id, f[1], f[2], f[3], f[4]}
      end
    end
  end
end
return found
"""

# Claims per (story, rule), in the story's alerts hash:
#   rule:new            the item that raised `new`
#   rule:item:<id>      the update number an item raised (so a re-delivery gets the same)
#   rule:updates        how many updates were raised; rule:last: when the last one was
_CLAIM = """
local rule, item, ttl, now, quiet = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local owner = redis.call('HGET', KEYS[1], rule .. ':new')
if not owner then
  redis.call('HSET', KEYS[1], rule .. ':new', item, rule .. ':last', now)
  redis.call('EXPIRE', KEYS[1], ttl)
  return 0
end
if owner == item then return 0 end
local mine = redis.call('HGET', KEYS[1], rule .. ':item:' .. item)
if mine then return tonumber(mine) end
local last = tonumber(redis.call('HGET', KEYS[1], rule .. ':last') or '0')
if now - last < quiet then return -1 end
local n = redis.call('HINCRBY', KEYS[1], rule .. ':updates', 1)
redis.call('HSET', KEYS[1], rule .. ':last', now, rule .. ':item:' .. item, n)
return n
"""


@dataclass(frozen=True, slots=True)
class Source:
    """One member of a story, as alerts list it."""

    item_id: str
    source: str
    url: str
    title: str
    published: str
    wires: tuple[str, ...] = ()  # agencies the report credits


class DedupIndex:
    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        window: int,
        near_threshold: float,
        story_threshold: float,
        claim_ttl: int,
        quiet: float = 3600.0,
    ) -> None:
        self.client = client
        self.keys = keys
        self.window = window
        self.near_threshold = near_threshold
        self.story_threshold = story_threshold
        self.claim_ttl = claim_ttl
        self.quiet = quiet  # seconds between two updates of one story for one rule
        self._claim = client.register_script(_CLAIM)
        self._count_terms = client.register_script(_COUNT_TERMS)
        self._index_item = client.register_script(_INDEX_ITEM)
        self._story_candidates = client.register_script(_STORY_CANDIDATES)
        self._near_candidates = client.register_script(_NEAR_CANDIDATES)
        self._frequencies = client.register_script(_FREQUENCIES)

    def place(self, item: Item, article: Article, now: float | None = None) -> Placement:
        """Decide where the item belongs and record it. Idempotent for the same item."""
        now = time.time() if now is None else now
        item_id = item.id
        url = canonical_url(article.canonical_url or item.url)
        url_key = self.keys.canonical(stable_id("url", url))
        pipe = self.client.pipeline(transaction=False)  # one round trip for both questions
        pipe.hmget(self.keys.entry(item_id), "story", "duplicate_of", "outcome")
        if url:  # claim the URL, or learn who has it (SET NX GET would need Redis 7)
            pipe.set(url_key, item_id, nx=True, ex=self.window)
            pipe.get(url_key)
        (story, original, outcome), *claimed = pipe.execute()
        if story:
            return Placement(
                outcome=Outcome.SEEN,
                story_id=story,
                duplicate_of=original or None,
                first_outcome=Outcome(outcome),
            )
        first = claimed[1] if claimed else None
        if first and first != item_id:
            story = self.client.hget(self.keys.entry(first), "story")
            if story:
                placement = Placement(
                    outcome=Outcome.SAME_ITEM, story_id=story, duplicate_of=first, similarity=1.0
                )
                self._record(item, article, placement, None, None, [], now)
                return placement

        hashes = shingle_hashes(article.text or item.summary or item.title)
        signature = minhash(hashes)
        buckets = band_buckets(signature)
        counts = features(item.title or article.title, article.text or item.summary)
        pipe = self.client.pipeline(transaction=False)
        self._document_frequencies(list(counts), now, pipe)
        days = self._days(now)
        self._near_candidates(
            keys=[
                self.keys.lsh_band(day, band, bucket)
                for band, bucket in enumerate(buckets)
                for day in days
            ],
            args=[item_id, self.keys.entry(""), len(days), *(b[LSH_GROUP:] for b in buckets)],
            client=pipe,
        )
        *frequencies, near = pipe.execute()
        df, documents = self._frequencies_of(list(counts), frequencies)
        terms = tfidf(counts, df, documents)
        placement = (
            self._near_duplicate(signature, len(hashes), near)
            or self._same_story(terms, item, article, now)
            or Placement(outcome=Outcome.NEW_STORY, story_id=stable_id("story", item.key))
        )
        self._record(item, article, placement, signature, terms, buckets, now, counts, len(hashes))
        return placement

    def _days(self, now: float) -> list[int]:
        """The day buckets of document frequencies that cover the window."""
        today = int(now // 86400)
        return list(range(today - self.window // 86400 - 1, today + 1))

    def _document_frequencies(self, terms: list[str], now: float, pipe) -> None:
        """Queue, on `pipe`, the question: how many recent originals (the window, by whole
        days) have each term, and how many originals there were."""
        if terms:
            self._frequencies(
                keys=[self.keys.df(day) for day in self._days(now)],
                args=["\n".join([_DOCUMENTS, *terms])],
                client=pipe,
            )

    @staticmethod
    def _frequencies_of(terms: list[str], reply: list) -> tuple[dict[str, int], int]:
        if not reply:
            return {}, 0
        counts = [int(n) for n in reply[0].split(",")]
        documents = counts[0]
        df = {term: n for term, n in zip(terms, counts[1:], strict=True) if n}
        return df, documents

    def _near_duplicate(self, signature, shingles: int, found: list) -> Placement | None:
        """The best earlier original whose text this one repeats (`found`: the members of
        its LSH buckets): estimated Jaccard of the word 3-grams at least `near_threshold`,
        or (a copy trimmed or padded with outlet boilerplate) most of the smaller text's
        3-grams shared, with a Jaccard of at least CONTAINED_JACCARD."""
        best: Placement | None = None
        for cid, sig, story, original, size in sorted(found):
            if not (sig and story):
                continue  # expired meanwhile
            score = jaccard(signature, decode_signature(sig))
            if not (score >= self.near_threshold or _contained(score, shingles, size)):
                continue
            if best is None or score > best.similarity:
                best = Placement(
                    outcome=Outcome.NEAR_DUPLICATE,
                    story_id=story,
                    duplicate_of=original or cid,  # point at the first copy, not a copy of it
                    similarity=score,
                )
        return best

    def _same_story(
        self, terms: StoryTerms, item: Item, article: Article, now: float
    ) -> Placement | None:
        query = terms.top(QUERY_TERMS)
        if not query:
            return None
        found = self._story_candidates(
            keys=[self.keys.term(term) for term in query],
            args=[now - self.window, TERM_FANOUT, item.id, STORY_CANDIDATES, MIN_SHARED_TERMS,
                  self.keys.entry("")],
        )  # fmt: skip
        published = _timestamp(item.published or article.published)
        best: Placement | None = None
        for _, raw, story, when in found:
            if not (raw and story):
                continue
            if published and when and abs(published - float(when)) > self.window:
                continue  # same words, another event: outside the story window
            score = cosine(terms, StoryTerms(json.loads(raw)))
            if score >= self.story_threshold and (best is None or score > best.similarity):
                best = Placement(outcome=Outcome.SAME_STORY, story_id=story, similarity=score)
        return best

    def _record(
        self, item, article, placement, signature, terms, buckets, now, counts=None, shingles=0
    ) -> None:
        entry = {
            "story": placement.story_id,
            "outcome": str(placement.outcome),
            "duplicate_of": placement.duplicate_of or "",
            "source": item.source,
            "wires": ",".join(credited(article.text)),
            "url": canonical_url(article.canonical_url or item.url),
            "title": item.title or article.title,
            "published": _iso(item.published or article.published),
            "published_ts": _timestamp(item.published or article.published) or "",
            "seen_at": now,
        }
        if signature is not None:
            entry["minhash"] = encode_signature(signature)
            entry["shingles"] = shingles
        if terms is not None:
            weights = {t: round(w, 4) for t, w in terms.weights.items()}  # ~half the bytes
            entry["terms"] = json.dumps(weights, separators=(",", ":"))
        entry_key = self.keys.entry(item.id)
        story_key = self.keys.story(placement.story_id)
        horizon = now - self.window
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(entry_key, mapping=entry)
        pipe.expire(entry_key, self.window)
        pipe.zadd(story_key, {item.id: now})
        pipe.expire(story_key, self.window)
        # Only originals are indexed: a copy of a copy is found through the original.
        if placement.outcome in (Outcome.NEW_STORY, Outcome.SAME_STORY):
            day_key = self.keys.df(int(now // 86400))
            counted = "\n".join([_DOCUMENTS, *(counts or ())])
            self._count_terms(keys=[day_key], args=[self.window + 2 * 86400, counted], client=pipe)
            today = int(now // 86400)
            bands = [self.keys.lsh_band(today, band, b) for band, b in enumerate(buckets)]
            term_keys = [self.keys.term(t) for t in terms.top(QUERY_TERMS)] if terms else []
            self._index_item(
                keys=[*bands, *term_keys],
                args=[item.id, now, horizon, self.window, len(bands), self.window + 86400,
                      *(b[LSH_GROUP:] for b in buckets)],
                client=pipe,
            )  # fmt: skip
        pipe.execute()

    def story_sources(self, story_id: str, limit: int = 50) -> list[Source]:
        """The story's members, oldest first (at most `limit`)."""
        ids = self.client.zrange(self.keys.story(story_id), 0, limit - 1)
        pipe = self.client.pipeline(transaction=False)
        for iid in ids:
            pipe.hmget(self.keys.entry(iid), "source", "url", "title", "published", "wires")
        sources = []
        for iid, (source, url, title, published, wires) in zip(ids, pipe.execute(), strict=True):
            if url:
                agencies = tuple(w for w in (wires or "").split(",") if w)
                sources.append(
                    Source(iid, source or "", url, title or "", published or "", agencies)
                )
        return sources

    def originals(self, now: float | None = None) -> int:
        """How many originals (new stories and same-story reports) the window indexes: the
        sum of the day counters, so slightly more than the window at a day's edge."""
        pipe = self.client.pipeline(transaction=False)
        for day in self._days(time.time() if now is None else now):
            pipe.hget(self.keys.df(day), _DOCUMENTS)
        return sum(int(n or 0) for n in pipe.execute())

    def story_size(self, story_id: str) -> int:
        return int(self.client.zcard(self.keys.story(story_id)))

    def claim_alert(
        self, story_id: str, rule_id: str, item_id: str, *, at: float | None = None
    ) -> tuple[AlertKind, int] | None:
        """Which alert this item raises for (story, rule), if any: the first matching item of
        a story claims `new`; a later one claims update number n when the story's last
        alert for the rule is at least `quiet` seconds older than `at`; others nothing. The
        same item always gets the same answer, so a re-delivered item re-publishes the
        same (idempotent) alert."""
        n = self._claim(
            keys=[self.keys.story_alerts(story_id)],
            args=[rule_id, item_id, self.claim_ttl, time.time() if at is None else at, self.quiet],
        )
        if n < 0:
            return None
        return (AlertKind.NEW, 0) if n == 0 else (AlertKind.UPDATE, int(n))


def _contained(jaccard: float, shingles: int, other: str | None) -> bool:
    """Whether the smaller of two shingle sets lies mostly inside the other, from their
    Jaccard estimate and sizes: |A∩B| = J(|A|+|B|)/(1+J)."""
    if jaccard < CONTAINED_JACCARD or not other or not shingles:
        return False
    sizes = (shingles, int(other))
    shared = jaccard * sum(sizes) / (1 + jaccard)
    return shared / min(sizes) >= CONTAINMENT


def _timestamp(when: datetime | None) -> float | None:
    return when.timestamp() if when else None


def _iso(when: datetime | None) -> str:
    return when.isoformat() if when else ""
