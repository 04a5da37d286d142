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
  local state = redis.call('HMGET', key, 'n', 'f')
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
  -- The story's first report of this hour? (the buckets of the hour before this one)
  local per_hour = math.max(1, math.floor(3600 / bucket))
  local hour_start = math.floor(b / per_hour) * per_hour
  local fields = {}
  for i = hour_start, hour_start + per_hour - 1 do fields[#fields + 1] = i end
  local earlier = 0
  for _, n in ipairs(redis.call('HMGET', key, unpack(fields))) do
    earlier = earlier + (tonumber(n) or 0)
  end
  redis.call('HINCRBY', key, b, 1)
  local name = '|' .. string.gsub(source, '|', '/') .. '|'
  local sources = redis.call('HGET', key, b .. ':s') or '|'
  if not string.find(sources, name, 1, true) then
    local count = select(2, string.gsub(sources, '|', '|')) - 1
    if count < tonumber(sources_kept) then
      redis.call('HSET', key, b .. ':s', sources .. string.sub(name, 2))
    end
  end
  redis.call('HSET', key, 'n', newest, 'f', first)
  redis.call('EXPIRE', key, ttl)
  if earlier == 0 then return 1 end
  return 0
end

-- The stream's activity (Keys.activity_day and Keys.active_stories), on one server only
-- (record.lua; a cluster writes it from Python): per hour of report time, reports (r<h>) and
-- stories with a report (s<h>, counted by a story's first report of the hour), in one hash
-- per day; and every story by its newest report time, trimmed to `kept_seconds` before it.
local function count_stream(day_prefix, stories, story, when, first_of_hour, ttl, kept_seconds)
  when = tonumber(when)
  local hour = math.floor(when / 3600)
  local day = day_prefix .. math.floor(hour / 24)
  redis.call('HINCRBY', day, 'r' .. hour, 1)
  if first_of_hour == 1 then redis.call('HINCRBY', day, 's' .. hour, 1) end
  redis.call('EXPIRE', day, ttl)
  local was = tonumber(redis.call('ZSCORE', stories, story))
  if not was or was < when then redis.call('ZADD', stories, when, story) end
  redis.call('ZREMRANGEBYSCORE', stories, '-inf', '(' .. (when - tonumber(kept_seconds)))
  redis.call('EXPIRE', stories, ttl)
end
