-- A report joins its story, on a cluster (dedup/spread.py): the story's sorted set and its
-- summary, one slot (tagged with the story id). Idempotent: a report already in the story
-- changes nothing (a re-delivered item writes again what it wrote before a crash).
--
-- KEYS[1] story: the story's sorted set
-- KEYS[2] summary: its summary
-- KEYS[3] activity: its activity hash (activity.lua)
-- ARGV[1] id: the item's id
-- ARGV[2] when: the report's time (its score)
-- ARGV[3] window: the ttl (s)
-- The summary update (summary.lua):
-- ARGV[4] vector: the vector JSON or "" (no update: a same-item record)
-- ARGV[5] time: the report's time
-- ARGV[6] names: its names ("|"-joined)
-- ARGV[7] figures: its figures ("|"-joined)
-- ARGV[8] centroid_size: the centroid's size
-- ARGV[9] names_kept: how many names the summary keeps
-- ARGV[10] figures_kept: how many figures it keeps
-- ARGV[11] founder: the vector JSON of the story's one member, or ""
-- The activity counts (activity.lua; the stream's are the caller's):
-- ARGV[12] source: the report's source ("": not counted)
-- ARGV[13] bucket: the activity bucket (s)
-- ARGV[14] buckets_kept: how many buckets a story's activity keeps
-- ARGV[15] sources_kept: how many sources a bucket keeps
-- Reply: 1 (joined), 2 (joined, the story's first report of its hour), 0 (was a member
-- already), -2 (nothing written: the summary needs the one member's vector, ARGV[11]; the
-- caller reads it and asks again), 3 (joined, its activity not counted: too old).

-- include: summary.lua
-- include: activity.lua

if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
if ARGV[4] ~= '' and ARGV[11] == '' then
  local s = redis.call('HMGET', KEYS[2], 'centroid', 'size')
  if not s[1] and s[2] then return -2 end
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
if ARGV[4] ~= '' then
  update_summary(KEYS[2], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10],
                 ARGV[3], function() return ARGV[11] end)
end
if ARGV[12] ~= '' then
  local first = count_activity(KEYS[3], ARGV[2], ARGV[12], ARGV[13], ARGV[14], ARGV[15], ARGV[3])
  if first == 1 then return 2 elseif first < 0 then return 3 end
end
return 1
