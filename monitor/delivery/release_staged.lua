-- Release the staged alerts old enough (AlertQueue.release): move them, oldest first, from
-- the staged stream to the alerts stream, each numbered there as claim_publish.lua numbers
-- the alerts it publishes at once. Their age is by Redis's clock (entry ids are its time).
-- KEYS[1] staged: the staged alerts' stream
-- KEYS[2] stream: the alerts stream
-- KEYS[3] counter: its entry counter
-- ARGV[1] hold_ms: how old a staged alert must be (ms)
-- ARGV[2] maxlen: about how many alerts the stream keeps
-- ARGV[3] min_id: the oldest entry id kept ('0': no age limit)
-- ARGV[4] count: at most this many at once
-- Reply: {alerts released, ms until the oldest one still staged is due (-1: none is),
-- alerts still staged}

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local hold = tonumber(ARGV[1])
local due = redis.call('XRANGE', KEYS[1], '-', string.format('%d', now - hold),
                       'COUNT', ARGV[4])
for _, entry in ipairs(due) do
  local fields = entry[2]
  fields[#fields + 1] = 'seq'
  fields[#fields + 1] = redis.call('INCR', KEYS[3])
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(fields))
  redis.call('XDEL', KEYS[1], entry[1])
end
if #due > 0 and ARGV[3] ~= '0' then
  redis.call('XTRIM', KEYS[2], 'MINID', '~', ARGV[3])
end
local left = redis.call('XLEN', KEYS[1])
if left == 0 then
  return {#due, -1, 0}
end
local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1][1]
local added = tonumber(string.match(oldest, '^(%d+)'))
return {#due, math.max(0, added + hold - now), left}
