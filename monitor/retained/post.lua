-- Post one document under its tokens in one block of the search index, on one server
-- (SearchIndex.add; on a cluster the postings spread over slots: a pipeline writes them).
-- A token's first posting in the block also puts its word in the field's words.
-- ARGV[1] postings: the block's postings prefix (the token follows)
-- ARGV[2] words: the block's words prefix (the field letter follows)
-- ARGV[3] posting: the document's number in the block, 2 bytes
-- ARGV[4..] tokens: a field letter and a word each
-- Reply: how many tokens were new to the block.
local new = 0
for i = 4, #ARGV do
  local token = ARGV[i]
  if redis.call('APPEND', ARGV[1] .. token, ARGV[3]) == 2 then
    redis.call('ZADD', ARGV[2] .. string.sub(token, 1, 1), 0, string.sub(token, 2))
    new = new + 1
  end
end
return new
