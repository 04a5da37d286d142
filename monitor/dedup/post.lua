-- An original is posted under one of its query terms, on a cluster (dedup/spread.py;
-- record.lua posts all of an item's terms at once on one server): the term's latest
-- `keep` items, by time. Idempotent.
-- KEYS[1] postings: the term's sorted set
-- ARGV[1] id: the item's id
-- ARGV[2] when: the report's time (its score)
-- ARGV[3] keep: how many items the term keeps
-- ARGV[4] ttl: the sorted set's ttl (s)
-- Reply: 1.

redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[3]) - 1)  -- older: skipped by score
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
