-- Where placement on a cluster starts (dedup/spread.py): the document frequencies of an
-- article's terms and, at the same instant, the state of the placement log — its last entry
-- and the placements committed but not written yet — which commit.lua compares with.
--
-- KEYS[1] previous: the previous generation's frequency hash (field '#documents':
--   originals counted)
-- KEYS[2] current: the current generation's
-- KEYS[3] log: the placement log (stream)
-- KEYS[4] flight: the placements in flight (hash: log entry id -> "<expiry ms>|<item>")
-- ARGV[1] terms: the article's terms (newline-joined)
-- Reply: {the log's last entry id ('0-0': none), the placements in flight (their log entry
-- id, item and query terms, newline-joined; flat), documents, the terms' frequencies summed over
-- the generations (newline-joined, in order), the server's time (ms)}.

-- include: frequencies.lua

local terms = {}
for term in string.gmatch(ARGV[1], "[^\n]+") do terms[#terms + 1] = term end
local documents, df = frequencies({KEYS[1], KEYS[2]}, terms)
local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local flying, flight = {}, redis.call('HGETALL', KEYS[4])
for i = 1, #flight, 2 do
  local entry = redis.call('XRANGE', KEYS[3], flight[i], flight[i])[1]
  if entry and tonumber(string.match(flight[i + 1], '^(%d+)')) > now then
    local fields = {}
    for k = 1, #entry[2], 2 do fields[entry[2][k]] = entry[2][k + 1] end
    flying[#flying + 1] = flight[i]
    flying[#flying + 1] = fields.item or ''
    flying[#flying + 1] = fields.terms or ''
  else
    redis.call('HDEL', KEYS[4], flight[i])  -- a placement that never finished: given up on
  end
end
return {last[1] and last[1][1] or '0-0', flying, documents, table.concat(df, '\n'), now}
