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
from monitor.text import words

_DOCUMENTS = "#documents"  # field of a generation's frequency hash: originals counted
QUERY_TERMS = 20  # terms of a new item used to look up candidates
TERM_FANOUT = 50  # latest items kept and read per term: bounds lookups at any index size
STORY_CANDIDATES = 10  # candidates scored in full
MIN_SHARED_TERMS = 2
CONTAINMENT = 0.7  # share of the smaller text's 3-grams that makes a trimmed/padded copy
CONTAINED_JACCARD = 0.3

# The scripts build key names from prefixes (Keys.term(""), Keys.lsh(generation), ...) and take
# terms, buckets and days as one joined argument each: packing and parsing a few hundred
# separate arguments and replies costs more than the work itself.

# Summed over the day buckets on the server: one reply for all terms and days.
# KEYS: the day hashes; ARGV[1]: the terms, newline-joined.
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

# Near-duplicate candidates: the ids in the item's LSH buckets on any day of the window,
# with their fingerprints. ARGV: the item's id, the entry key prefix, the buckets
# (comma-joined, in band order), the window's LSH day prefixes (comma-joined).
_NEAR_CANDIDATES = """
local group = tonumber(ARGV[5])
local days = {}
for day in string.gmatch(ARGV[4], "[^,]+") do days[#days + 1] = day end
local seen, found, band = {[ARGV[1]] = true}, {}, 0
for bucket in string.gmatch(ARGV[3], "[^,]+") do
  local suffix, field = band .. ':' .. bucket:sub(1, group), bucket:sub(group + 1)
  for _, day in ipairs(days) do
    local ids = redis.call('HGET', day .. suffix, field)
    if ids then
      for id in string.gmatch(ids, "[^,]+") do
        if not seen[id] then
          seen[id] = true
          local f = redis.call('HMGET', ARGV[2] .. id,
                               'minhash', 'story', 'duplicate_of', 'shingles')
          found[#found + 1] = {id, f[1], f[2], f[3], f[4]}
        end
      end
    end
  end
  band = band + 1
end
return found
"""

# The closest earlier item of another story, decided on the server. Candidates: the items
# sharing at least `min_shared` of the query terms among each term's `fanout` latest postings
# since `horizon`, the best `limit` of them by the weight of the query terms they share (the
# part of the dot product the postings already tell); each is scored by the dot product
# of the two unit TF-IDF vectors (stored as JSON) and skipped when published more than a
# window apart. Returns {story, score} of the best reaching `threshold`, or nil. One round
# trip, a few bytes back.
_SAME_STORY = """
local horizon, fanout, self_id = ARGV[1], ARGV[2], ARGV[3]
local limit, min_shared = tonumber(ARGV[4]), tonumber(ARGV[5])
local entries, postings = ARGV[6], ARGV[7]
local vector = cjson.decode(ARGV[8])
local published, window, threshold = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local shared = {}  -- per id: shared terms + their weight / 100 (weights sum to < 20)
for term in string.gmatch(ARGV[12], "[^\\n]+") do
  local ids = redis.call('ZREVRANGEBYSCORE', postings .. term, '+inf', horizon, 'LIMIT', 0, fanout)
  local step = 1 + vector[term] / 100
  for _, id in ipairs(ids) do shared[id] = (shared[id] or 0) + step end
end
shared[self_id] = nil
local ranked = {}
for id, value in pairs(shared) do
  if value >= min_shared then ranked[#ranked + 1] = {id, value % 1} end
end
table.sort(ranked, function(a, b)
  if a[2] ~= b[2] then return a[2] > b[2] end
  return a[1] < b[1]
end)
local story, best = nil, -1
for i = 1, math.min(#ranked, limit) do
  local f = redis.call('HMGET', entries .. ranked[i][1], 'terms', 'story', 'published_ts')
  local when = tonumber(f[3])
  if f[1] and f[2] and not (published and when and math.abs(published - when) > window) then
    local score = 0
    for term, weight in pairs(cjson.decode(f[1])) do
      local mine = vector[term]
      if mine then score = score + mine * weight end
    end
    if score >= threshold and score > best then story, best = f[2], score end
  end
end
if story then return {story, string.format('%.6f', best)} end
return nil
"""

# Everything an item leaves behind, in one atomic step. KEYS: its entry hash, its story's
# sorted set. ARGV: id, now, window; then, for originals only (else empty strings): the
# generation's frequency hash, its ttl, the counted terms (newline-joined), the generation's
# LSH prefix, its ttl, the buckets (comma-joined), the term key prefix, the query terms
# (newline-joined), the postings kept per term, the bucket group width; from ARGV[14] on,
# the entry's fields and values.
_RECORD = """
local id, now, window = ARGV[1], ARGV[2], ARGV[3]
redis.call('HSET', KEYS[1], unpack(ARGV, 14))
redis.call('EXPIRE', KEYS[1], window)
redis.call('ZADD', KEYS[2], now, id)
redis.call('EXPIRE', KEYS[2], window)
if ARGV[4] == '' then return 0 end
for term in string.gmatch(ARGV[6], "[^\\n]+") do redis.call('HINCRBY', ARGV[4], term, 1) end
redis.call('EXPIRE', ARGV[4], ARGV[5])
local group, band = tonumber(ARGV[13]), 0
for bucket in string.gmatch(ARGV[9], "[^,]+") do
  local key, field = ARGV[7] .. band .. ':' .. bucket:sub(1, group), bucket:sub(group + 1)
  local ids = redis.call('HGET', key, field)
  redis.call('HSET', key, field, ids and (ids .. ',' .. id) or id)
  redis.call('EXPIRE', key, ARGV[8])
  band = band + 1
end
local keep = tonumber(ARGV[12])
for term in string.gmatch(ARGV[11], "[^\\n]+") do
  local key = ARGV[10] .. term
  redis.call('ZADD', key, now, id)
  redis.call('ZREMRANGEBYRANK', key, 0, -keep - 1)  -- older ones: skipped by score on reading
  redis.call('EXPIRE', key, window)
end
return 1
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


class FrequencyCache:
    """Document frequencies remembered between items, so that an item asks Redis only for
    the terms it is the first in a while to use. Frequencies move slowly once the window
    holds more than a few hundred articles: the cache is dropped as soon as the window's
    article count has moved by more than `drift` of what it was when the cache was started,
    after `ttl` seconds, or past `limit` terms. On a small index (under 1/drift articles)
    every new article drops it, so small indexes see exact counts."""

    def __init__(self, drift: float = 0.01, ttl: float = 60.0, limit: int = 300_000) -> None:
        self.drift, self.ttl, self.limit = drift, ttl, limit
        self._df: dict[str, int] = {}
        self._documents = -1  # the window's article count when the cache was started
        self._started = 0.0

    def wanted(self, terms: list[str]) -> list[str]:
        """The terms to ask Redis for (all of them when the cache has expired)."""
        if time.monotonic() - self._started > self.ttl:
            self._documents = -1
        if self._documents < 0:
            return terms
        return [t for t in terms if t not in self._df]

    def answer(self, terms, asked: list[str], counts: list[int], documents: int) -> dict[str, int]:
        """The frequencies of `terms`, given Redis's `counts` for the `asked` ones and the
        window's current article count."""
        fresh = dict(zip(asked, counts, strict=True))
        known = self._df
        df = {t: fresh[t] if t in fresh else known.get(t, 0) for t in terms}
        moved = abs(documents - self._documents) > self.drift * self._documents
        if self._documents < 0 or moved or len(known) > self.limit:
            known.clear()
            self._documents, self._started = documents, time.monotonic()
        known.update(fresh)
        return df


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
        self._span = max(window // 2, 1)  # seconds per generation of frequencies and buckets
        self._claim = client.register_script(_CLAIM)
        self._frequencies = client.register_script(_FREQUENCIES)
        self._near_candidates = client.register_script(_NEAR_CANDIDATES)
        self._same_story_script = client.register_script(_SAME_STORY)
        self._record_script = client.register_script(_RECORD)
        self._df = FrequencyCache()

    def place(self, item: Item, article: Article, now: float | None = None) -> Placement:
        """Decide where the item belongs and record it. Idempotent for the same item."""
        now = time.time() if now is None else now
        item_id = item.id
        url = canonical_url(article.canonical_url or item.url)
        url_key = self.keys.canonical(stable_id("url", url))
        body = words(article.text or item.summary or "")
        hashes = shingle_hashes(body or item.title)
        signature = minhash(hashes)
        buckets = band_buckets(signature)
        counts = features(item.title or article.title, body)
        wanted = self._df.wanted(list(counts))
        generations = self._generations(now)
        # One round trip for every question: known already? URL claimed? document
        # frequencies, near-duplicate candidates.
        pipe = self.client.pipeline(transaction=False)
        pipe.hmget(self.keys.entry(item_id), "story", "duplicate_of", "outcome")
        if url:  # claim the URL, or learn who has it (SET NX GET would need Redis 7)
            pipe.set(url_key, item_id, nx=True, ex=self.window)
            pipe.get(url_key)
        self._frequencies(
            keys=[self.keys.df(g) for g in generations],
            args=["\n".join([_DOCUMENTS, *wanted])],
            client=pipe,
        )
        self._near_candidates(
            args=[item_id, self.keys.entry(""), ",".join(buckets),
                  ",".join(self.keys.lsh(g) for g in generations), LSH_GROUP],
            client=pipe,
        )  # fmt: skip
        (story, original, outcome), *claimed, frequencies, near = pipe.execute()
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

        documents, *found = (int(n) for n in frequencies.split(","))
        df = self._df.answer(counts, wanted, found, documents)
        terms = tfidf(counts, df, documents)
        placement = (
            self._near_duplicate(signature, len(hashes), near)
            or self._same_story(terms, item, article, now)
            or Placement(outcome=Outcome.NEW_STORY, story_id=stable_id("story", item.key))
        )
        self._record(item, article, placement, signature, terms, buckets, now, counts, len(hashes))
        return placement

    def _generations(self, now: float) -> list[int]:
        """The generations (half a window each) of document frequencies and LSH buckets
        that cover the window: the current one and the two before it. Three lookups per
        question instead of one per day, and keys that expire a generation after the
        window has left them."""
        current = int(now // self._span)
        return [current - 2, current - 1, current]

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
        published = _timestamp(item.published or article.published)
        found = self._same_story_script(
            args=[now - self.window, TERM_FANOUT, item.id, STORY_CANDIDATES, MIN_SHARED_TERMS,
                  self.keys.entry(""), self.keys.term(""), json.dumps(terms.weights),
                  "" if published is None else published, self.window, self.story_threshold,
                  "\n".join(query)],
        )  # fmt: skip
        if not found:
            return None
        story, score = found
        return Placement(outcome=Outcome.SAME_STORY, story_id=story, similarity=float(score))

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
        index: list[str | int] = [""] * 10
        # Only originals are indexed: a copy of a copy is found through the original.
        if placement.outcome in (Outcome.NEW_STORY, Outcome.SAME_STORY):
            current = int(now // self._span)
            ttl = self.window + self._span  # until the last lookup that includes it
            index = [
                self.keys.df(current), ttl, "\n".join([_DOCUMENTS, *(counts or ())]),
                self.keys.lsh(current), ttl, ",".join(buckets),
                self.keys.term(""), "\n".join(terms.top(QUERY_TERMS) if terms else ()),
                TERM_FANOUT, LSH_GROUP,
            ]  # fmt: skip
        self._record_script(
            keys=[self.keys.entry(item.id), self.keys.story(placement.story_id)],
            args=[item.id, now, self.window, *index, *(x for kv in entry.items() for x in kv)],
        )

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
        sum of the three generations' counters, so up to 1.5 windows' worth."""
        pipe = self.client.pipeline(transaction=False)
        for generation in self._generations(time.time() if now is None else now):
            pipe.hget(self.keys.df(generation), _DOCUMENTS)
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
