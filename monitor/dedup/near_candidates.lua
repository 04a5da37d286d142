-- Near-duplicate candidates (dedup/server.py): the ids in an item's LSH buckets in the
-- window's generations, with their fingerprints.
-- KEYS: none (key names are built from the prefixes below).
-- ARGV[1] id: the item's id
-- ARGV[2] entry_prefix: the entry key prefix
-- ARGV[3] buckets: the buckets (comma-joined, in band order)
-- ARGV[4] lsh_prefixes: the generations' LSH prefixes (comma-joined)
-- ARGV[5] group: the bucket group width
-- Reply: a list of {id, minhash, story, duplicate_of, shingles}, each id once, the item's own
-- id left out.

local group = tonumber(ARGV[5])
local generations = {}
for prefix in string.gmatch(ARGV[4], "[^,]+") do generations[#generations + 1] = prefix end
local seen, found, band = {[ARGV[1]] = true}, {}, 0
for bucket in string.gmatch(ARGV[3], "[^,]+") do
  local suffix, field = band .. ':' .. bucket:sub(1, group), bucket:sub(group + 1)
  for _, prefix in ipairs(generations) do
    local ids = redis.call('HGET', prefix .. suffix, field)
    if ids then
      for id in string.gmatch(ids, "[^,]+") do
        if not seen[id] then
          seen[id] = true
          local f = redis.call('HMGET', ARGV[2] .. id,
                               'minhash', 'story', 'duplicate_of', 'shingles')
          found[#found + 1] = {id, f[1], f[2], f[3], f[4]}
        end
      end
    end
  end
  band = band + 1
end
return found
