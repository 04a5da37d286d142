-- Append to a stream read by consumer groups, then trim it to about `maxlen` entries — but
-- only entries every group is done with: below each group's oldest pending entry and not
-- after its last delivered one. A group far behind holds the stream longer (the lag metrics
-- show it); nothing it still has to handle is trimmed.
-- KEYS[1] stream: the stream
-- KEYS[2] counter: its entry counter
-- ARGV[1] maxlen: about how many entries to keep
-- ARGV[2] field_name: the field of the values
-- ARGV[3..] values: one entry each
-- Reply: the entry ids.

local function before(a, b)  -- stream ids "ms-seq": a < b
  local am, as = string.match(a, '(%d+)-(%d+)')
  local bm, bs = string.match(b, '(%d+)-(%d+)')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
local ids = {}
for i = 3, #ARGV do
  local seq = redis.call('INCR', KEYS[2])
  ids[#ids + 1] = redis.call('XADD', KEYS[1], '*', ARGV[2], ARGV[i], 'seq', seq)
end
local excess = redis.call('XLEN', KEYS[1]) - tonumber(ARGV[1])
if excess <= 0 then return ids end
local floor = nil
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local info = {}
  for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
  local needed = info['last-delivered-id']
  if tonumber(info['pending']) > 0 then
    needed = redis.call('XPENDING', KEYS[1], info['name'])[2]
  end
  if floor == nil or before(needed, floor) then floor = needed end
end
local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', math.min(excess, 1000) + 1)
local cut = oldest[#oldest][1]
if floor ~= nil and before(floor, cut) then cut = floor end
redis.call('XTRIM', KEYS[1], 'MINID', cut)
return ids
