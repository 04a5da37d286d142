-- Everything an item leaves behind in the dedup index, in one atomic step
-- (dedup/server.py).
--
-- KEYS[1] entry: its entry hash
-- KEYS[2] story: its story's sorted set
-- KEYS[3] summary: its story's summary hash
-- KEYS[4] activity: its story's activity hash (activity.lua)
-- KEYS[5] active: the stories by newest report time
-- ARGV[1] id: the item's id
-- ARGV[2] when: the report's time (its score in its story and its postings)
-- ARGV[3] window: the entry's and story's ttl (s)
-- The check, for originals ("": none): if another original carrying one of the query terms
-- was recorded meanwhile, nothing is written and -1 is returned, and the caller decides
-- again (so two daemons deciding rewrites of one story at the same moment give one story).
-- ARGV[4] check_keys: the generations' frequency hashes read (comma-joined)
-- ARGV[5] check_terms: "term<TAB>frequency" lines of the query terms as the decision saw them
-- The story summary update (summary.lua):
-- ARGV[6] vector: the vector JSON or "" (no update)
-- ARGV[7] time: the report's time
-- ARGV[8] names: its names ("|"-joined)
-- ARGV[9] figures: its figures ("|"-joined)
-- ARGV[10] centroid_size: the centroid's size
-- ARGV[11] names_kept: how many names the summary keeps
-- ARGV[12] figures_kept: how many figures it keeps
-- The indexing, for originals only (else empty strings):
-- ARGV[13] df: the generation's frequency hash
-- ARGV[14] df_ttl: its ttl (s)
-- ARGV[15] counted: the counted terms (newline-joined)
-- ARGV[16] lsh: the generation's LSH prefix
-- ARGV[17] lsh_ttl: its hashes' ttl (s)
-- ARGV[18] buckets: the buckets (comma-joined)
-- ARGV[19] term_prefix: the term key prefix
-- ARGV[20] query: the query terms (newline-joined)
-- ARGV[21] fanout: the postings kept per term
-- ARGV[22] group: the bucket group width
-- The activity counts (activity.lua), for a report joining its story ("": none):
-- ARGV[23] source: the report's source
-- ARGV[24] story_id: the story's id
-- ARGV[25] bucket: the activity bucket (s)
-- ARGV[26] buckets_kept: how many buckets a story's activity keeps
-- ARGV[27] sources_kept: how many sources a bucket keeps
-- ARGV[28] day_prefix: the stream's activity hashes' prefix (then the day number)
-- ARGV[29..] fields: the entry's fields and values
-- Reply: -1 (the check failed, nothing written), 0 (recorded, not indexed: a copy or a seen
-- item), 1 (recorded and indexed).

-- include: summary.lua
-- include: activity.lua
-- include: count.lua

local id, when, window = ARGV[1], ARGV[2], ARGV[3]
if ARGV[4] ~= '' then  -- one HMGET per generation
  local terms, expected, seen = {}, {}, {}
  for term, n in string.gmatch(ARGV[5], "([^\t\n]+)\t([^\n]+)") do
    terms[#terms + 1], expected[#expected + 1], seen[#seen + 1] = term, tonumber(n), 0
  end
  for key in string.gmatch(ARGV[4], "[^,]+") do
    local values = redis.call('HMGET', key, unpack(terms))
    for i = 1, #terms do seen[i] = seen[i] + (tonumber(values[i]) or 0) end
  end
  for i = 1, #terms do
    if seen[i] ~= expected[i] then return -1 end
  end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 29))
redis.call('EXPIRE', KEYS[1], window)
redis.call('ZADD', KEYS[2], when, id)
redis.call('EXPIRE', KEYS[2], window)
if ARGV[6] ~= '' then
  update_summary(KEYS[3], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12],
                 window, function()
    local entries = string.sub(KEYS[1], 1, #KEYS[1] - #id)
    for _, member in ipairs(redis.call('ZRANGE', KEYS[2], 0, 1)) do
      if member ~= id then
        local terms = redis.call('HGET', entries .. member, 'terms')
        if terms then return terms end
      end
    end
  end)
end
if ARGV[23] ~= '' then
  local first = count_activity(KEYS[4], when, ARGV[23], ARGV[25], ARGV[26], ARGV[27], window)
  if first >= 0 then count_stream(ARGV[28], KEYS[5], ARGV[24], when, first, window, window) end
end
if ARGV[13] == '' then return 0 end
count_terms(ARGV[13], ARGV[15])
redis.call('EXPIRE', ARGV[13], ARGV[14])
local group, band = tonumber(ARGV[22]), 0
for bucket in string.gmatch(ARGV[18], "[^,]+") do
  local key, field = ARGV[16] .. band .. ':' .. bucket:sub(1, group), bucket:sub(group + 1)
  if redis.call('HSETNX', key, field, id) == 0 then  -- a bucket with members: appended
    redis.call('HSET', key, field, redis.call('HGET', key, field) .. ',' .. id)
  end
  redis.call('EXPIRE', key, ARGV[17])
  band = band + 1
end
local keep = tonumber(ARGV[21])
for term in string.gmatch(ARGV[20], "[^\n]+") do
  local key = ARGV[19] .. term
  redis.call('ZADD', key, when, id)
  redis.call('ZREMRANGEBYRANK', key, 0, -keep - 1)  -- older ones: skipped by score on reading
  redis.call('EXPIRE', key, window)
end
return 1
