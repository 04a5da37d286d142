-- Claim an alert for (story, rule) and publish it, in one step (AlertQueue.claim_and_publish).
--
-- Claims per (story, rule), in the story's alerts hash:
--   rule:new            the item that raised `new`
--   rule:item:<id>      the update number an item raised (so a re-delivery gets the same)
--   rule:updates        how many updates were raised; rule:last: when the last one was
--   rule:breaks         how many `breaking` were raised; rule:broke: the report time of the
--                       last; rule:break:<id>: the break number an item raised
-- KEYS[1] marker: the alert's marker (its id published)
-- KEYS[2] stream: the alerts stream, or (staged) the staged alerts' stream
-- KEYS[3] counter: the alerts stream's entry counter
-- KEYS[4]? claims: the story's alerts hash (absent: publish without a claim)
-- ARGV[1] alert: the alert (JSON)
-- ARGV[2] marker_ttl: the marker's ttl (s)
-- ARGV[3] maxlen: about how many alerts the stream keeps
-- ARGV[4] alert_id: the alert's id
-- ARGV[5] min_id: the oldest entry id kept ('0': no age limit)
-- ARGV[6] staged: '1': the alert is staged (release_staged.lua numbers it and moves it to
--   the alerts stream later), '0': it goes to the alerts stream now
-- ARGV[7]? rule: the rule (with a claim, as all that follow)
-- ARGV[8]? item: the item raising the alert
-- ARGV[9]? claim_ttl: the alerts hash's ttl (s)
-- ARGV[10]? now: the time of the claim
-- ARGV[11]? quiet: seconds between two updates of the story for the rule
-- ARGV[12]? claim: the claim the alert was built for (0: new, n: update n; -2: only say
--   what the claim would be: the alert's arguments are not read)
-- ARGV[13]? kind: "breaking" (claim n: break n, `now` the report's time, `quiet` the
--   breaking quiet period), else new or update
-- Reply: {claim, entry id or false, held until}; claim -1: nothing to raise (an update
-- within the quiet period), and then the third is when that period ends (Unix seconds, a
-- string: Lua numbers reach Redis as integers). When the claim is not the one the alert was
-- built for, nothing is written: the caller builds that one and asks again. The entry id is
-- the staged stream's when the alert is staged.

local claim, record = 0, nil
if KEYS[4] then
  local rule, item, now, quiet = ARGV[7], ARGV[8], tonumber(ARGV[10]), tonumber(ARGV[11])
  local owner = redis.call('HGET', KEYS[4], rule .. ':new')
  if ARGV[13] == 'breaking' then
    local mine = redis.call('HGET', KEYS[4], rule .. ':break:' .. item)
    if mine then
      claim = tonumber(mine)
    else
      local last = tonumber(redis.call('HGET', KEYS[4], rule .. ':broke') or '')
      if last and now < last + quiet then return {-1, false, tostring(last + quiet)} end
      claim = tonumber(redis.call('HGET', KEYS[4], rule .. ':breaks') or '0') + 1
      record = 'breaking'
    end
  elseif not owner then
    record = 'new'
  elseif owner ~= item then
    local mine = redis.call('HGET', KEYS[4], rule .. ':item:' .. item)
    if mine then
      claim = tonumber(mine)
    else
      local last = tonumber(redis.call('HGET', KEYS[4], rule .. ':last') or '0')
      if now - last < quiet then return {-1, false, tostring(last + quiet)} end
      claim = tonumber(redis.call('HGET', KEYS[4], rule .. ':updates') or '0') + 1
      record = 'update'
    end
  end
  if claim ~= tonumber(ARGV[12]) then return {claim, false} end
  if record == 'new' then
    redis.call('HSET', KEYS[4], rule .. ':new', item, rule .. ':last', now)
    redis.call('EXPIRE', KEYS[4], ARGV[9])
  elseif record == 'breaking' then
    redis.call('HSET', KEYS[4], rule .. ':breaks', claim, rule .. ':broke', now,
               rule .. ':break:' .. item, claim)
    redis.call('EXPIRE', KEYS[4], ARGV[9])
  elseif record == 'update' then
    redis.call('HSET', KEYS[4], rule .. ':updates', claim, rule .. ':last', now,
               rule .. ':item:' .. item, claim)
  end
end
if redis.call('SET', KEYS[1], '', 'NX', 'EX', ARGV[2]) then
  if ARGV[6] == '1' then
    local entry = redis.call('XADD', KEYS[2], '*', 'id', ARGV[4], 'alert', ARGV[1])
    redis.call('SET', KEYS[1], entry, 'KEEPTTL')
    return {claim, entry}
  end
  local seq = redis.call('INCR', KEYS[3])
  local entry = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*',
                           'id', ARGV[4], 'alert', ARGV[1], 'seq', seq)
  redis.call('SET', KEYS[1], entry, 'KEEPTTL')
  if ARGV[5] ~= '0' then
    redis.call('XTRIM', KEYS[2], 'MINID', '~', ARGV[5])
  end
  return {claim, entry}
end
return {claim, false}
