-- An original counted in a generation's document frequencies: each of its terms once;
-- included by record.lua (one server) and commit.lua (a cluster).
--
-- count_terms(key, terms (newline-joined)): one HMGET and one HSET, however many terms —
-- not one HINCRBY each (one call per term was the largest share of Redis's time per item).
-- The same counts as HINCRBY's, as the script runs atomically.

local function count_terms(key, joined)
  local terms = {}
  for term in string.gmatch(joined, "[^\n]+") do terms[#terms + 1] = term end
  if #terms == 0 then return end
  local values, fields = redis.call('HMGET', key, unpack(terms)), {}
  for i, term in ipairs(terms) do
    fields[2 * i - 1], fields[2 * i] = term, (tonumber(values[i]) or 0) + 1
  end
  redis.call('HSET', key, unpack(fields))
end
