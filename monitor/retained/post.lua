-- Post one document's occurrences under their tokens in one block of the search index, on
-- one server (SearchIndex.add; on a cluster the postings spread over slots: a pipeline
-- writes them). A token's first postings in the block also put its word in the field's
-- words.
-- ARGV[1] postings: the block's postings prefix (the token follows)
-- ARGV[2] words: the block's words prefix (the field letter follows)
-- ARGV[3..] tokens: in turn a token (a field letter and a word) and its occurrences (3 bytes each)
-- Reply: how many tokens were new to the block.
local new = 0
for i = 3, #ARGV, 2 do
  local token, posting = ARGV[i], ARGV[i + 1]
  if redis.call('APPEND', ARGV[1] .. token, posting) == #posting then
    redis.call('ZADD', ARGV[2] .. string.sub(token, 1, 1), 0, string.sub(token, 2))
    new = new + 1
  end
end
return new
