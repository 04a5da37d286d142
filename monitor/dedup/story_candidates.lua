-- Same-story candidates, gathered on the server in one call (dedup/server.py).
--
-- First the article's TF-IDF vector, as fingerprint.tfidf computes it (that function is the
-- reference; tests hold them equal): document frequencies summed over the window's
-- generations, the `keep` heaviest terms, unit length. Then candidates: the items sharing at
-- least `min_shared` of the `query` heaviest terms among each term's `fanout` latest postings
-- within the window either side of the report's time, the best `limit` of them by the weight of the query terms they share; each
-- is scored by the dot product of the two vectors (stored as JSON), and each of their stories
-- by the dot product with its centroid. No time cut: times are signals, weighed in Python.
--
-- KEYS[1..] frequencies: the generations' document-frequency hashes (field '#documents':
--   originals counted)
-- ARGV[1] counts: "term<TAB>count<TAB>background frequency" lines (fingerprint.prior_df)
-- ARGV[2] prior_documents: the background's documents
-- ARGV[3] keep: terms kept in the vector
-- ARGV[4] query: the heaviest terms looked up and posted
-- ARGV[5] since: the report's time less the window (older postings are skipped)
-- ARGV[6] fanout: postings read per term
-- ARGV[7] id: the item's id
-- ARGV[8] limit: candidates scored in full
-- ARGV[9] min_shared: query terms a candidate shares at least
-- ARGV[10] entry_prefix: the entry key prefix
-- ARGV[11] term_prefix: the term key prefix
-- ARGV[12] summary_prefix: what comes before a story id in its summary's name
-- ARGV[13] names: the terms of the item's names (newline-joined: looked up and posted
--   besides the `query` heaviest terms)
-- ARGV[14] summary_suffix: what comes after it (Keys.summary_affixes)
-- ARGV[15] until: the report's time plus the window (newer postings are skipped)
-- Reply: {vector as stored (JSON, 4 decimals), the query terms (newline-joined), their
-- document frequencies (newline-joined, for the check of record.lua), the candidates (id,
-- story, cosine, title terms, wires; flat), their stories (id, size, oldest, newest,
-- centroid cosine or '' for a story of one report, names, figures; flat), the query terms
-- whose postings in the window are at the fanout (a new posting pushes one out)}.

-- include: frequencies.lua

local terms, counts, prior = {}, {}, {}
for term, count, p in string.gmatch(ARGV[1], "([^\t\n]+)\t([^\t\n]+)\t([^\t\n]+)") do
  terms[#terms + 1], counts[#counts + 1], prior[#prior + 1] = term, tonumber(count), tonumber(p)
end
local documents, df = frequencies(KEYS, terms)
local scale, weights, sorted, df_of = documents + tonumber(ARGV[2]), {}, {}, {}
for i = 1, #terms do
  weights[i] = (1 + math.log(counts[i])) * math.log(scale / (df[i] + prior[i] + 1))
  sorted[i] = weights[i]
  df_of[terms[i]] = df[i]
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
local vector, stored, query, query_df = {}, {}, {}, {}
for term, weight in pairs(top) do
  if weight > 0 then
    vector[term], stored[term] = weight / norm, tonumber(string.format('%.4f', weight / norm))
  end
end
for term, weight in pairs(query_terms) do
  if weight > 0 then query[#query + 1] = term end
end
for term in string.gmatch(ARGV[13], "[^\n]+") do  -- the names' terms: looked up and posted too
  if df_of[term] and not query_terms[term] then query[#query + 1] = term end
end
table.sort(query)
for i, term in ipairs(query) do query_df[i] = df_of[term] end
local encoded = next(stored) and cjson.encode(stored) or '{}'

local since, upto, fanout, self_id = ARGV[5], ARGV[15], ARGV[6], ARGV[7]
local limit, min_shared = tonumber(ARGV[8]), tonumber(ARGV[9])
local entries, postings, summaries, after = ARGV[10], ARGV[11], ARGV[12], ARGV[14]
local full = {}  -- query terms whose postings in the window are at the fanout
local shared = {}  -- per id: shared terms + their weight / 100 (weights sum to < 20)
for _, term in ipairs(query) do
  local ids = redis.call('ZREVRANGEBYSCORE', postings .. term, upto, since, 'LIMIT', 0, fanout)
  if #ids >= tonumber(fanout) then full[#full + 1] = term end  -- a new posting pushes one out
  local step = 1 + (vector[term] or 0) / 100
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
local found, stories, seen = {}, {}, {}
for i = 1, math.min(#ranked, limit) do
  local id = ranked[i][1]
  local f = redis.call('HMGET', entries .. id, 'terms', 'story', 'title_terms', 'wires')
  if f[1] and f[2] then
    local score = 0
    for term, weight in pairs(cjson.decode(f[1])) do
      local mine = vector[term]
      if mine then score = score + mine * weight end
    end
    found[#found + 1] = id
    found[#found + 1] = f[2]
    found[#found + 1] = string.format('%.6f', score)
    found[#found + 1] = f[3] or ''
    found[#found + 1] = f[4] or ''
    if not seen[f[2]] then
      seen[f[2]] = true
      local s = redis.call('HMGET', summaries .. f[2] .. after, 'size', 'oldest', 'newest', 'centroid',
                           'names', 'figures')
      local dot, length = 0, 0
      if s[4] then
        for term, weight in pairs(cjson.decode(s[4])) do
          length = length + weight * weight
          local mine = vector[term]
          if mine then dot = dot + mine * weight end
        end
      end
      if length > 0 then dot = dot / math.sqrt(length) end
      local centroid = s[4] and string.format('%.6f', dot) or ''  -- '': a single report
      for _, value in ipairs({f[2], s[1] or '1', s[2] or '', s[3] or '', centroid,
                              s[5] or '', s[6] or ''}) do
        stories[#stories + 1] = value
      end
    end
  end
end
return {encoded, table.concat(query, '\n'), table.concat(query_df, '\n'), found, stories,
        full}
