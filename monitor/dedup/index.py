"""The dedup index in Redis: places each item as seen / same item / near-duplicate /
same story / new story (DESIGN §4.4). (Alert claims live with publishing: monitor.queue.)

Bounded in time and size: an item's own keys expire one window after it was placed; LSH
buckets and document frequencies are kept per generation (a window long) and expire a
window after their generation ends; each term keeps only its latest TERM_FANOUT postings.
So memory follows the window, not history. Candidate lookup costs the same at any index
size: LSH buckets for near-duplicates, the postings of an item's heaviest terms for stories.
Deciding an item is one round trip; recording it is one script.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import redis

from monitor.dedup.fingerprint import (
    PRIOR_DOCUMENTS,
    VECTOR_TERMS,
    band_buckets,
    decode_signature,
    encode_signature,
    features,
    jaccard,
    minhash,
    shingle_hashes,
)
from monitor.dedup.wires import credited
from monitor.feeds import article_url
from monitor.keys import LSH_GROUP, Keys
from monitor.model import Article, Item, Outcome, Placement, stable_id
from monitor.text import words

_DOCUMENTS = "#documents"  # field of a generation's frequency hash: originals counted
QUERY_TERMS = 20  # terms of a new item used to look up candidates
TERM_FANOUT = 50  # latest items kept and read per term: bounds lookups at any index size
STORY_CANDIDATES = 10  # candidates scored in full
MIN_SHARED_TERMS = 2
CONTAINMENT = 0.7  # share of the smaller text's 3-grams that makes a trimmed/padded copy
CONTAINED_JACCARD = 0.3

# The scripts build key names from prefixes (Keys.term(""), Keys.lsh(generation), ...) and
# take terms, buckets and generations as one joined argument each: packing and parsing a few
# hundred separate arguments and replies costs more than the work itself.

# Near-duplicate candidates: the ids in the item's LSH buckets in the window's generations,
# with their fingerprints. ARGV: the item's id, the entry key prefix, the buckets
# (comma-joined, in band order), the generations' LSH prefixes (comma-joined), the bucket
# group width.
_NEAR_CANDIDATES = """
local group = tonumber(ARGV[5])
local generations = {}
for prefix in string.gmatch(ARGV[4], "[^,]+") do generations[#generations + 1] = prefix end
local seen, found, band = {[ARGV[1]] = true}, {}, 0
for bucket in string.gmatch(ARGV[3], "[^,]+") do
  local suffix, field = band .. ':' .. bucket:sub(1, group), bucket:sub(group + 1)
  for _, prefix in ipairs(generations) do
    local ids = redis.call('HGET', prefix .. suffix, field)
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

# Same story, decided on the server in one call. First the article's TF-IDF vector, as
# fingerprint.tfidf computes it (that function is the reference; tests hold them equal):
# document frequencies summed over the window's generations (KEYS; '#documents' is
# _DOCUMENTS), the `keep` heaviest terms, unit length. Then candidates: the items sharing at
# least `min_shared` of the `query` heaviest terms among each term's `fanout` latest postings
# since `horizon`, the best `limit` of them by the weight of the query terms they share; each
# is scored by the dot product of the two vectors (stored as JSON) and skipped when published
# more than a window apart. ARGV: counts ("term<TAB>count" lines), prior documents, keep,
# query, horizon, fanout, item id, limit, min_shared, entry prefix, term prefix, published
# (or ""), window, threshold. Returns {story, score} of the best reaching the threshold (or
# false, false), the vector as stored (JSON, 4 decimals) and the query terms (newline-joined).
_SAME_STORY = """
local terms, counts, df = {}, {}, {}
for term, count in string.gmatch(ARGV[1], "([^\\t\\n]+)\\t([^\\n]+)") do
  terms[#terms + 1], counts[#counts + 1], df[#df + 1] = term, tonumber(count), 0
end
local documents = 0
for _, key in ipairs(KEYS) do
  local values = redis.call('HMGET', key, '#documents', unpack(terms))
  documents = documents + (tonumber(values[1]) or 0)
  for i = 1, #terms do
    local n = values[i + 1]
    if n then df[i] = df[i] + tonumber(n) end
  end
end
local scale, weights, sorted = documents + tonumber(ARGV[2]), {}, {}
for i = 1, #terms do
  weights[i] = (1 + math.log(counts[i])) * math.log(scale / (df[i] + 1))
  sorted[i] = weights[i]
end
table.sort(sorted)  -- numbers only: no Lua comparator, C speed
-- The n heaviest terms, ties at the cut broken by the term, as a set.
local function heaviest(n)
  local chosen, tied = {}, {}
  if n >= #terms then
    for i = 1, #terms do chosen[terms[i]] = weights[i] end
    return chosen
  end
  local cut, taken = sorted[#sorted - n + 1], 0
  for i = 1, #terms do
    if weights[i] > cut then
      chosen[terms[i]], taken = weights[i], taken + 1
    elseif weights[i] == cut then
      tied[#tied + 1] = terms[i]
    end
  end
  table.sort(tied)
  for i = 1, n - taken do chosen[tied[i]] = cut end
  return chosen
end
local top, query_terms = heaviest(tonumber(ARGV[3])), heaviest(tonumber(ARGV[4]))
local norm = 0
for _, weight in pairs(top) do norm = norm + weight * weight end
norm = math.sqrt(norm)
if norm == 0 then norm = 1 end
local vector, stored, query = {}, {}, {}
for term, weight in pairs(top) do
  if weight > 0 then
    vector[term], stored[term] = weight / norm, tonumber(string.format('%.4f', weight / norm))
    if query_terms[term] then query[#query + 1] = term end
  end
end
table.sort(query)
local encoded = #query > 0 and cjson.encode(stored) or '{}'
local result = {false, false, encoded, table.concat(query, '\\n')}

local horizon, fanout, self_id = ARGV[5], ARGV[6], ARGV[7]
local limit, min_shared = tonumber(ARGV[8]), tonumber(ARGV[9])
local entries, postings = ARGV[10], ARGV[11]
local published, window, threshold = tonumber(ARGV[12]), tonumber(ARGV[13]), tonumber(ARGV[14])
local shared = {}  -- per id: shared terms + their weight / 100 (weights sum to < 20)
for _, term in ipairs(query) do
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
local best = -1
for i = 1, math.min(#ranked, limit) do
  local f = redis.call('HMGET', entries .. ranked[i][1], 'terms', 'story', 'published_ts')
  local when = tonumber(f[3])
  if f[1] and f[2] and not (published and when and math.abs(published - when) > window) then
    local score = 0
    for term, weight in pairs(cjson.decode(f[1])) do
      local mine = vector[term]
      if mine then score = score + mine * weight end
    end
    if score >= threshold and score > best then
      best, result[1], result[2] = score, f[2], string.format('%.6f', score)
    end
  end
end
return result
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


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What an item leaves in the index besides its metadata."""

    signature: np.ndarray  # MinHash of its word 3-grams
    shingles: int  # how many distinct 3-grams
    buckets: list[str]  # LSH bucket per band
    counts: dict[str, float]  # term counts (document frequencies count each term once)
    vector: str  # TF-IDF vector as stored: JSON, 4 decimals
    query: str  # its heaviest terms, newline-joined: where it is posted


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
        claim_ttl: int,  # kept here for the alert claims (AlertQueue.claim_and_publish)
        quiet: float = 3600.0,
    ) -> None:
        self.client = client
        self.keys = keys
        self.window = max(window, 1)  # also the length of a generation (see _generations)
        self.near_threshold = near_threshold
        self.story_threshold = story_threshold
        self.claim_ttl = claim_ttl
        self.quiet = quiet  # seconds between two updates of one story for one rule
        self._near_candidates = client.register_script(_NEAR_CANDIDATES)
        self._same_story = client.register_script(_SAME_STORY)
        self._record_script = client.register_script(_RECORD)

    def place(self, item: Item, article: Article, now: float | None = None) -> Placement:
        """Decide where the item belongs and record it. Idempotent for the same item."""
        now = time.time() if now is None else now
        item_id = item.id
        url = article_url(item, article)
        url_key = self.keys.canonical(stable_id("url", url))
        body = words(article.text or item.summary or "")
        hashes = shingle_hashes(body or item.title)
        signature = minhash(hashes)
        buckets = band_buckets(signature)
        counts = features(item.title or article.title, body)
        published = _timestamp(item.time or article.published)  # the report's time
        generations = self._generations(now)
        # One round trip asks every question: known already? URL claimed? near-duplicate
        # candidates? the closest story (and the article's TF-IDF vector)?
        pipe = self.client.pipeline(transaction=False)
        pipe.hmget(self.keys.entry(item_id), "story", "duplicate_of", "outcome")
        if url:  # claim the URL, or learn who has it (SET NX GET would need Redis 7)
            pipe.set(url_key, item_id, nx=True, ex=self.window)
            pipe.get(url_key)
        self._near_candidates(
            args=[item_id, self.keys.entry(""), ",".join(buckets),
                  ",".join(self.keys.lsh(g) for g in generations), LSH_GROUP],
            client=pipe,
        )  # fmt: skip
        self._same_story(
            keys=[self.keys.df(g) for g in generations],
            args=["\n".join(f"{term}\t{count}" for term, count in counts.items()),
                  PRIOR_DOCUMENTS, VECTOR_TERMS, QUERY_TERMS, now - self.window, TERM_FANOUT,
                  item_id, STORY_CANDIDATES, MIN_SHARED_TERMS, self.keys.entry(""),
                  self.keys.term(""), "" if published is None else published, self.window,
                  self.story_threshold],
            client=pipe,
        )  # fmt: skip
        (story, original, outcome), *claimed, near, closest = pipe.execute()
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
                self._record(item, article, placement, now)
                return placement

        same_story, score, vector, query = closest
        copy = self._near_duplicate(signature, len(hashes), near)
        if copy:
            placement = copy
        elif same_story:
            placement = Placement(
                outcome=Outcome.SAME_STORY, story_id=same_story, similarity=float(score)
            )
        else:
            placement = Placement(outcome=Outcome.NEW_STORY, story_id=stable_id("story", item.key))
        fingerprint = Fingerprint(signature, len(hashes), buckets, counts, vector, query)
        self._record(item, article, placement, now, fingerprint)
        return placement

    def _generations(self, now: float) -> list[int]:
        """The generations (a window long each) of document frequencies and LSH buckets
        that cover the window: the current one and the one before. Two lookups per question
        instead of one per day; an entry is dropped from the buckets one to two windows
        after it was written (its item's own hash expires after one window, which is what
        keeps lookups inside the window)."""
        current = int(now // self.window)
        return [current - 1, current]

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

    def _record(
        self, item: Item, article: Article, placement: Placement, now: float,
        fingerprint: Fingerprint | None = None,
    ) -> None:  # fmt: skip
        entry = {
            "story": placement.story_id,
            "outcome": str(placement.outcome),
            "duplicate_of": placement.duplicate_of or "",
            "source": item.source,
            "wires": ",".join(credited(article.text)),
            "url": article_url(item, article),
            "title": item.title or article.title,
            "published": _iso(item.published or article.published),
            "published_ts": _timestamp(item.time or article.published) or "",
            "seen_at": now,
        }
        index: list[str | int] = [""] * 10
        if fingerprint is not None:
            entry["minhash"] = encode_signature(fingerprint.signature)
            entry["shingles"] = fingerprint.shingles
            entry["terms"] = fingerprint.vector
        # Only originals are indexed: a copy of a copy is found through the original.
        if fingerprint and placement.outcome in (Outcome.NEW_STORY, Outcome.SAME_STORY):
            current = int(now // self.window)
            ttl = 2 * self.window  # until the last lookup that includes it
            index = [
                self.keys.df(current), ttl, "\n".join([_DOCUMENTS, *fingerprint.counts]),
                self.keys.lsh(current), ttl, ",".join(fingerprint.buckets),
                self.keys.term(""), fingerprint.query, TERM_FANOUT, LSH_GROUP,
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
        """About how many originals (new stories and same-story reports) the window holds:
        the current generation's count, plus the previous one's share that is still inside
        the window (as if its items had come at an even rate)."""
        now = time.time() if now is None else now
        pipe = self.client.pipeline(transaction=False)
        for generation in self._generations(now):
            pipe.hget(self.keys.df(generation), _DOCUMENTS)
        previous, current = (int(n or 0) for n in pipe.execute())
        inside = 1 - (now % self.window) / self.window  # of the previous generation
        return current + round(previous * inside)

    def story_size(self, story_id: str) -> int:
        return int(self.client.zcard(self.keys.story(story_id)))


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
