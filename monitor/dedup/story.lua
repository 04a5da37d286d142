-- A report joins its story, on a cluster (dedup/spread.py): the story's sorted set and its
-- summary, one slot (tagged with the story id). Idempotent: a report already in the story
-- changes nothing (a re-delivered item writes again what it wrote before a crash).
--
-- KEYS: [1] the story's sorted set, [2] its summary.
-- ARGV: [1] the item's id, [2] now, [3] window (ttl); the summary update (see summary.lua),
-- [4] the vector JSON or "" (no update: a same-item record), [5] the report's time, [6] names
-- and [7] figures ("|"-joined), [8] the centroid's size, [9] names and [10] figures kept,
-- [11] the vector JSON of the story's one member, or "".
-- Reply: 1 (joined), 0 (was a member already), -2 (nothing written: the summary needs the
-- one member's vector, ARGV[11]; the caller reads it and asks again).

-- include: summary.lua

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
return 1
