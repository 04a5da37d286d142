-- An original is posted under one of its query terms, on a cluster (dedup/spread.py;
-- record.lua posts all of an item's terms at once on one server): the term's latest
-- `keep` items, by time. Idempotent.
-- KEYS: [1] the term's sorted set. ARGV: [1] the item's id, [2] now, [3] keep, [4] ttl.

redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[3]) - 1)  -- older: skipped by score
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
