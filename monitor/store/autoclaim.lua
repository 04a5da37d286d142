-- XAUTOCLAIM ... JUSTID with its cursor (redis-py drops it from a JUSTID reply), and the ids
-- Redis 7 removed from the pending list because their entries were trimmed.
-- KEYS[1] stream: the stream
-- ARGV[1] group: the consumer group
-- ARGV[2] consumer: who takes the entries over
-- ARGV[3] min_idle_ms: how long an entry has been pending at least
-- ARGV[4] start: the id to start from (the cursor)
-- ARGV[5] count: at most how many entries
-- Reply: {next start id, claimed ids, deleted ids (Redis 7; empty on 6.2)}.

local reply = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4],
                         'COUNT', ARGV[5], 'JUSTID')
return {reply[1], reply[2], reply[3] or {}}
