-- Post one document under its tokens in one block of the search index, on one server
-- (SearchIndex.add; on a cluster the postings spread over slots: a pipeline writes them).
-- A token's first posting in the block also puts its word in the field's words.
-- ARGV[1] postings: the block's postings prefix (the token follows)
-- ARGV[2] words: the block's words prefix (the field letter follows)
-- ARGV[3] posting: the document's number in the block, 2 bytes
-- ARGV[4] tokens: each one's length (2 bytes), then the token (a field letter and a word)
-- Reply: how many tokens were new to the block.
local blob = ARGV[4]
local new, at = 0, 1
while at < #blob do
  local high, low = string.byte(blob, at, at + 1)
  local token = string.sub(blob, at + 2, at + 1 + high * 256 + low)
  at = at + 2 + high * 256 + low
  if redis.call('APPEND', ARGV[1] .. token, ARGV[3]) == 2 then
    redis.call('ZADD', ARGV[2] .. string.sub(token, 1, 1), 0, string.sub(token, 2))
    new = new + 1
  end
end
return new
