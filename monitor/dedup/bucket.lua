-- An original enters one LSH bucket, on a cluster (dedup/spread.py; record.lua does all of
-- an item's buckets at once on one server). Idempotent.
-- KEYS[1] group: the bucket group's hash
-- ARGV[1] field: the bucket's field
-- ARGV[2] id: the item's id
-- ARGV[3] ttl: the hash's ttl (s)
-- Reply: 1 (added), 0 (there already).

local ids = redis.call('HGET', KEYS[1], ARGV[1])
if ids and string.find(',' .. ids .. ',', ',' .. ARGV[2] .. ',', 1, true) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ids and (ids .. ',' .. ARGV[2]) or ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
