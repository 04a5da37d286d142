-- A story's activity counted with one report; included by record.lua (one server) and
-- story.lua (a cluster). The activity hash (Keys.story_activity) has, per bucket of report
-- time (`bucket` seconds, numbered time // bucket):
--   <b>      the reports of the bucket
--   <b>:s    its distinct sources, "|"-delimited ("|a|b|"), at most `sources_kept`
-- and n (the newest bucket counted), f (the oldest kept). Only the `kept` buckets up to the
-- newest are kept: a report older than that is not counted, older buckets are deleted.
--
-- count_activity(key, report time, source, bucket, kept, sources kept, ttl): 1 when the report
-- is the story's first of its hour (of report time), else 0; -1: too old, not counted.

local function count_activity(key, when, source, bucket, kept, sources_kept, ttl)
  bucket, kept = tonumber(bucket), tonumber(kept)
  local b = math.floor(tonumber(when) / bucket)
  -- One read: the bounds, this bucket's sources and the buckets of its hour.
  local per_hour = math.max(1, math.floor(3600 / bucket))
  local hour_start = math.floor(b / per_hour) * per_hour
  local fields = {'n', 'f', b .. ':s'}
  for i = hour_start, hour_start + per_hour - 1 do fields[#fields + 1] = i end
  local state = redis.call('HMGET', key, unpack(fields))
  local newest, first = tonumber(state[1]) or b, tonumber(state[2]) or b
  if b <= newest - kept then return -1 end
  newest, first = math.max(newest, b), math.min(first, b)
  local low = newest - kept + 1
  if first < low then
    if low - first <= kept then
      for old = first, low - 1 do redis.call('HDEL', key, old, old .. ':s') end
    else  -- a long gap: delete what is there rather than every bucket number in between
      for _, name in ipairs(redis.call('HKEYS', key)) do
        local n = tonumber(string.match(name, '^(%-?%d+)'))
        if n and n < low then redis.call('HDEL', key, name) end
      end
    end
    first = low
  end
  local earlier, mine = 0, 0
  for i = 4, #state do
    local n = tonumber(state[i]) or 0
    earlier = earlier + n
    if hour_start + i - 4 == b then mine = n end
  end
  local name = '|' .. string.gsub(source, '|', '/') .. '|'
  local sources = state[3] or '|'
  if not string.find(sources, name, 1, true) then
    local _, bars = string.gsub(sources, '|', '|')
    if bars - 1 < tonumber(sources_kept) then sources = sources .. string.sub(name, 2) end
  end
  redis.call('HSET', key, b, mine + 1, b .. ':s', sources, 'n', newest, 'f', first)
  redis.call('EXPIRE', key, ttl)
  if earlier == 0 then return 1 end
  return 0
end

-- The stream's activity (Keys.activity_day and Keys.active_stories), on one server only
-- (record.lua; a cluster writes it from Python): per hour of report time, reports (r<h>) and
-- stories with a report (s<h>, counted by a story's first report of the hour), in one hash
-- per day; and every story by its newest report time, trimmed to `kept_seconds` before it
-- (trimmed, and its expiry renewed, at each story's first report of an hour).
local function count_stream(day_prefix, stories, story, when, first_of_hour, ttl, kept_seconds)
  when = tonumber(when)
  local hour = math.floor(when / 3600)
  local day = day_prefix .. math.floor(hour / 24)
  redis.call('HINCRBY', day, 'r' .. hour, 1)
  redis.call('ZADD', stories, 'GT', when, story)
  if first_of_hour == 1 then
    -- Once per story-hour: the story-hour counted, old stories trimmed, expiries renewed.
    redis.call('HINCRBY', day, 's' .. hour, 1)
    redis.call('ZREMRANGEBYSCORE', stories, '-inf', '(' .. (when - tonumber(kept_seconds)))
    redis.call('EXPIRE', stories, ttl)
    redis.call('EXPIRE', day, ttl)  -- a new hour (so a new day) starts with a story's first
  end
end
