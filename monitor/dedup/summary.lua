-- A story's summary updated with one report; included by record.lua (one server) and
-- story.lua (a cluster). The summary (Keys.story_summary): size, oldest and newest report
-- time, centroid (summed term weights, its `centroid_size` heaviest), names and figures.
--
-- update_summary(key, vector JSON, report time, names, figures ("|"-joined), centroid size,
-- names kept, figures kept, ttl, founder): `founder()` gives the vector JSON of the story's
-- one member (or nil), asked only when the summary has a size but no centroid yet — a story
-- of one report keeps none, its member's vector is one.

local function update_summary(key, vector, when, names, figures, centroid_size, names_cap,
                              figures_cap, ttl, founder)
  when = tonumber(when)
  local s = redis.call('HMGET', key, 'oldest', 'newest', 'centroid', 'names', 'figures', 'size')
  local oldest, newest = tonumber(s[1]) or when, tonumber(s[2]) or when
  local centroid = s[3] and cjson.decode(s[3])
  if not centroid and s[6] then
    local terms = founder()
    if terms then centroid = cjson.decode(terms) end
  end
  local single = not centroid
  centroid = centroid or {}
  for term, weight in pairs(cjson.decode(vector)) do
    centroid[term] = (centroid[term] or 0) + weight
  end
  -- The `centroid_size` heaviest terms, ties at the cut broken by the term: the cut found
  -- by sorting numbers only (C speed, no Lua comparator).
  local weights, cap, kept = {}, tonumber(centroid_size), {}
  for _, weight in pairs(centroid) do weights[#weights + 1] = weight end
  local cut, tied = -math.huge, {}
  if #weights > cap then
    table.sort(weights)
    cut = weights[#weights - cap + 1]
  end
  for term, weight in pairs(centroid) do
    if weight > cut then
      kept[term], cap = tonumber(string.format('%.4f', weight)), cap - 1
    elseif weight == cut then
      tied[#tied + 1] = term
    end
  end
  table.sort(tied)
  for i = 1, math.min(cap, #tied) do kept[tied[i]] = tonumber(string.format('%.4f', cut)) end
  local function union(old, new, cap)
    local out, have = {}, {}
    for _, list in ipairs({old or '', new}) do
      for value in string.gmatch(list, "[^|]+") do
        if not have[value] and #out < cap then have[value] = true; out[#out + 1] = value end
      end
    end
    return table.concat(out, '|')
  end
  redis.call('HSET', key, 'oldest', math.min(oldest, when), 'newest', math.max(newest, when),
             'names', union(s[4], names, tonumber(names_cap)),
             'figures', union(s[5], figures, tonumber(figures_cap)))
  if not (single and not s[6]) then redis.call('HSET', key, 'centroid', cjson.encode(kept)) end
  redis.call('HINCRBY', key, 'size', 1)
  redis.call('EXPIRE', key, ttl)
end
