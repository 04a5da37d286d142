-- Claim an alert for (story, rule) and publish it, in one step (AlertQueue.claim_and_publish).
--
-- Claims per (story, rule), in the story's alerts hash:
--   rule:new            the item that raised `new`
--   rule:item:<id>      the update number an item raised (so a re-delivery gets the same)
--   rule:updates        how many updates were raised; rule:last: when the last one was
-- KEYS: the alert's marker, the alerts stream, its entry counter, the story's alerts hash
-- (absent: publish without a claim). ARGV: the alert (JSON), marker ttl, maxlen, alert id,
-- min id ('0': no age limit); with a claim: rule, item, claim ttl, now, quiet, and the claim
-- the alert was built for (0: new, n: update n; -2: only say what the claim would be).
-- Returns {claim, entry id or false}; claim -1: nothing to raise. When the claim is not the
-- one the alert was built for, nothing is written: the caller builds that one and asks again.

local claim, record = 0, nil
if KEYS[4] then
  local rule, item, now, quiet = ARGV[6], ARGV[7], tonumber(ARGV[9]), tonumber(ARGV[10])
  local owner = redis.call('HGET', KEYS[4], rule .. ':new')
  if not owner then
    record = 'new'
  elseif owner ~= item then
    local mine = redis.call('HGET', KEYS[4], rule .. ':item:' .. item)
    if mine then
      claim = tonumber(mine)
    else
      local last = tonumber(redis.call('HGET', KEYS[4], rule .. ':last') or '0')
      if now - last < quiet then return {-1, false} end
      claim = tonumber(redis.call('HGET', KEYS[4], rule .. ':updates') or '0') + 1
      record = 'update'
    end
  end
  if claim ~= tonumber(ARGV[11]) then return {claim, false} end
  if record == 'new' then
    redis.call('HSET', KEYS[4], rule .. ':new', item, rule .. ':last', now)
    redis.call('EXPIRE', KEYS[4], ARGV[8])
  elseif record == 'update' then
    redis.call('HSET', KEYS[4], rule .. ':updates', claim, rule .. ':last', now,
               rule .. ':item:' .. item, claim)
  end
end
if redis.call('SET', KEYS[1], '', 'NX', 'EX', ARGV[2]) then
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
