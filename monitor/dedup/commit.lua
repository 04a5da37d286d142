-- The commit of an original's placement on a cluster (dedup/spread.py), in the slot of the
-- document frequencies. The decision read the index between snapshot.lua and now. Another
-- original posted under enough of its query terms to be one of its candidates (the
-- candidates' MIN_SHARED_TERMS), committed since the snapshot or in flight then (committed,
-- not all written), may be missing from what it read: then nothing is written (-1) and the
-- caller decides again, as record.lua's check does on one server. Otherwise the placement
-- is logged with its query terms, in flight until the caller has written it and removes it
-- (HDEL), and the frequencies count it (once: an attempt cut short by a crash counted them
-- already): two daemons deciding rewrites of one story at once
-- give one story. (One server checks the frequencies of the query terms instead: any
-- original counting one of them, which a decision of one round trip can afford; a shared
-- name like "Reuters" would make every slower decision here start again.)
--
-- KEYS[1] df: the current generation's frequency hash
-- KEYS[2] log: the placement log (stream)
-- KEYS[3] flight: the placements in flight (hash: log entry id -> "<expiry ms>|<item>")
-- ARGV[1] last: the log's last id at the snapshot
-- ARGV[2] taken_at: the snapshot's time (ms)
-- ARGV[3] flying: the ids in flight then (comma-joined)
-- ARGV[4] id: the item's id
-- ARGV[5] query: its query terms (newline-joined)
-- ARGV[6] counted: the terms it counts (newline-joined, '#documents' among them)
-- ARGV[7] df_ttl: the frequencies' ttl (s)
-- ARGV[8] flight_ms: how long a placement may stay in flight (ms)
-- ARGV[9] check: '1': check ('0': the last attempt, unchecked)
-- ARGV[10] log_ms: how long the log keeps entries (ms)
-- ARGV[11] min_shared: how many shared query terms make a candidate
-- Reply: the placement's log entry id, or -1.

-- include: count.lua

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local horizon = now - tonumber(ARGV[10])
local item = ARGV[4]
if ARGV[9] == '1' then
  if tonumber(ARGV[2]) < horizon then
    return -1  -- a decision slower than the log's memory: cannot tell, decide again
  end
  local mine = {}
  for term in string.gmatch(ARGV[5], "[^\n]+") do mine[term] = true end
  local shared_enough = tonumber(ARGV[11])
  local function crosses(entry)
    local fields, shared = {}, 0
    for i = 1, #entry[2], 2 do fields[entry[2][i]] = entry[2][i + 1] end
    if fields.item == item then return false end  -- its own earlier attempt
    for term in string.gmatch(fields.terms or '', "[^\n]+") do
      if mine[term] then
        shared = shared + 1
        if shared >= shared_enough then return true end
      end
    end
    return false
  end
  for _, entry in ipairs(redis.call('XRANGE', KEYS[2], '(' .. ARGV[1], '+')) do
    if crosses(entry) then return -1 end
  end
  for id in string.gmatch(ARGV[3], "[^,]+") do
    for _, entry in ipairs(redis.call('XRANGE', KEYS[2], id, id)) do
      if crosses(entry) then return -1 end
    end
  end
end
local flight, counted = redis.call('HGETALL', KEYS[3]), false
for i = 1, #flight, 2 do  -- an earlier attempt of this item (it crashed before writing)
  if string.match(flight[i + 1], '|(.*)$') == item then
    redis.call('HDEL', KEYS[3], flight[i])
    counted = true  -- that attempt counted its terms already: not twice
  end
end
local id = redis.call('XADD', KEYS[2], 'MINID', '~', horizon .. '-0', '*',
                      'item', item, 'terms', ARGV[5])
if not counted then
  count_terms(KEYS[1], ARGV[6])
end
redis.call('EXPIRE', KEYS[1], ARGV[7])
redis.call('HSET', KEYS[3], id, (now + tonumber(ARGV[8])) .. '|' .. item)
return id
