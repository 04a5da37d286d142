-- The document frequencies of terms summed over generations' frequency hashes (field
-- '#documents': originals counted); included by snapshot.lua.
-- frequencies(keys, terms) -> documents, {frequency of terms[i]}

local function frequencies(keys, terms)
  local df, documents = {}, 0
  for i = 1, #terms do df[i] = 0 end
  for _, key in ipairs(keys) do
    local values = redis.call('HMGET', key, '#documents', unpack(terms))
    documents = documents + (tonumber(values[1]) or 0)
    for i = 1, #terms do
      local n = values[i + 1]
      if n then df[i] = df[i] + tonumber(n) end
    end
  end
  return documents, df
end
