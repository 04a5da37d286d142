-- XAUTOCLAIM ... JUSTID with its cursor (redis-py drops it from a JUSTID reply), and the ids
-- Redis 7 removed from the pending list because their entries were trimmed.
-- KEYS: the stream. ARGV: group, consumer, min idle (ms), start id, count.
-- Reply: {next start id, claimed ids, deleted ids (Redis 7; empty on 6.2)}.

local reply = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4],
                         'COUNT', ARGV[5], 'JUSTID')
return {reply[1], reply[2], reply[3] or {}}
