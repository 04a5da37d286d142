-- Read a story's facts and add a report's to them, those the story lacks (StoryFacts.measure:
-- what the report adds is measured against the facts returned), and keep them `retention`
-- seconds more.
-- KEYS[1] facts: the story's facts (4-byte hashes)
-- ARGV[1] retention: seconds to keep them after this report
-- ARGV[2] mine: the report's facts (4-byte hashes, each once)
-- Reply: the story's facts before the report (a string; empty for its first report).
local known = redis.call('GET', KEYS[1]) or ''
local mine = ARGV[2]
local new = {}
if known == '' then
  if mine ~= '' then
    new[1] = mine
  end
else
  local seen = {}
  for i = 1, #known, 4 do
    seen[string.sub(known, i, i + 3)] = true
  end
  for i = 1, #mine, 4 do
    local fact = string.sub(mine, i, i + 3)
    if not seen[fact] then
      new[#new + 1] = fact
    end
  end
end
if #new > 0 then
  redis.call('APPEND', KEYS[1], table.concat(new))
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return known
