-- Everything an item leaves behind in the dedup index, in one atomic step
-- (DedupIndex._record).
--
-- KEYS: [1] its entry hash, [2] its story's sorted set, [3] its story's summary hash.
-- ARGV: [1] id, [2] now, [3] window;
--   the check, for originals: [4] the generations' frequency hashes read (comma-joined),
--   [5] "term<TAB>frequency" lines of the query terms as the decision saw them: if another
--   original carrying one of those terms was recorded meanwhile, nothing is written and -1 is
--   returned, and the caller decides again (so two daemons deciding rewrites of one story at
--   the same moment give one story);
--   the story summary update: [6] the vector JSON or "", [7] the report's time, [8] names and
--   [9] figures ("|"-joined), [10] the centroid's size, [11] names and [12] figures kept;
--   for originals only (else empty strings): [13] the generation's frequency hash, [14] its
--   ttl, [15] the counted terms (newline-joined), [16] the generation's LSH prefix, [17] its
--   ttl, [18] the buckets (comma-joined), [19] the term key prefix, [20] the query terms
--   (newline-joined), [21] the postings kept per term, [22] the bucket group width;
--   from [23] on, the entry's fields and values.
-- Reply: -1 (the check failed, nothing written), 0 (recorded, not indexed: a copy or a seen
-- item), 1 (recorded and indexed).

local id, now, window = ARGV[1], ARGV[2], ARGV[3]
if ARGV[4] ~= '' then
  local keys = {}
  for key in string.gmatch(ARGV[4], "[^,]+") do keys[#keys + 1] = key end
  for term, expected in string.gmatch(ARGV[5], "([^\t\n]+)\t([^\n]+)") do
    local n = 0
    for _, key in ipairs(keys) do n = n + (tonumber(redis.call('HGET', key, term)) or 0) end
    if n ~= tonumber(expected) then return -1 end
  end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 23))
redis.call('EXPIRE', KEYS[1], window)
redis.call('ZADD', KEYS[2], now, id)
redis.call('EXPIRE', KEYS[2], window)
if ARGV[6] ~= '' then
  local when = tonumber(ARGV[7])
  local s = redis.call('HMGET', KEYS[3], 'oldest', 'newest', 'centroid', 'names', 'figures',
                       'size')
  local oldest, newest = tonumber(s[1]) or when, tonumber(s[2]) or when
  local centroid = s[3] and cjson.decode(s[3])
  if not centroid and s[6] then
    -- A story of one report keeps no centroid (its member's vector is one): start from it.
    local entries = string.sub(KEYS[1], 1, #KEYS[1] - #id)
    for _, member in ipairs(redis.call('ZRANGE', KEYS[2], 0, 1)) do
      if member ~= id and not centroid then
        local terms = redis.call('HGET', entries .. member, 'terms')
        if terms then centroid = cjson.decode(terms) end
      end
    end
  end
  local single = not centroid
  centroid = centroid or {}
  for term, weight in pairs(cjson.decode(ARGV[6])) do
    centroid[term] = (centroid[term] or 0) + weight
  end
  local ranked = {}
  for term, weight in pairs(centroid) do ranked[#ranked + 1] = {term, weight} end
  table.sort(ranked, function(a, b)
    if a[2] ~= b[2] then return a[2] > b[2] end
    return a[1] < b[1]
  end)
  local kept = {}
  for i = 1, math.min(#ranked, tonumber(ARGV[10])) do
    kept[ranked[i][1]] = tonumber(string.format('%.4f', ranked[i][2]))
  end
  local function union(old, new, cap)
    local out, have = {}, {}
    for _, list in ipairs({old or '', new}) do
      for value in string.gmatch(list, "[^|]+") do
        if not have[value] and #out < cap then have[value] = true; out[#out + 1] = value end
      end
    end
    return table.concat(out, '|')
  end
  redis.call('HSET', KEYS[3], 'oldest', math.min(oldest, when), 'newest', math.max(newest, when),
             'names', union(s[4], ARGV[8], tonumber(ARGV[11])),
             'figures', union(s[5], ARGV[9], tonumber(ARGV[12])))
  if not (single and not s[6]) then redis.call('HSET', KEYS[3], 'centroid', cjson.encode(kept)) end
  redis.call('HINCRBY', KEYS[3], 'size', 1)
  redis.call('EXPIRE', KEYS[3], window)
end
if ARGV[13] == '' then return 0 end
for term in string.gmatch(ARGV[15], "[^\n]+") do redis.call('HINCRBY', ARGV[13], term, 1) end
redis.call('EXPIRE', ARGV[13], ARGV[14])
local group, band = tonumber(ARGV[22]), 0
for bucket in string.gmatch(ARGV[18], "[^,]+") do
  local key, field = ARGV[16] .. band .. ':' .. bucket:sub(1, group), bucket:sub(group + 1)
  local ids = redis.call('HGET', key, field)
  redis.call('HSET', key, field, ids and (ids .. ',' .. id) or id)
  redis.call('EXPIRE', key, ARGV[17])
  band = band + 1
end
local keep = tonumber(ARGV[21])
for term in string.gmatch(ARGV[20], "[^\n]+") do
  local key = ARGV[19] .. term
  redis.call('ZADD', key, now, id)
  redis.call('ZREMRANGEBYRANK', key, 0, -keep - 1)  -- older ones: skipped by score on reading
  redis.call('EXPIRE', key, window)
end
return 1
