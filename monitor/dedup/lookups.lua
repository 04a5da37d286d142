-- A look's second step on one server (dedup/reads.py), in one call: the members of the
-- report's LSH buckets and its query terms' postings. Reads only, no arithmetic (the daemon
-- ranks them: dedup/gather.py); one call instead of ~100 pipelined commands saves the
-- daemon their packing and parsing. A cluster reads the same with plain commands.
--
-- KEYS: none (one server only: the key names come joined below).
-- ARGV[1] buckets: "hash<TAB>field" lines, one per band and generation
-- ARGV[2] postings: the query terms' posting keys (newline-joined)
-- ARGV[3] until: the newest report time read
-- ARGV[4] since: the oldest
-- ARGV[5] fanout: postings read per term
-- Reply: {each bucket's members (comma-joined, '' for none), in order; each term's ids
-- within [since, until], newest first, at most `fanout` (comma-joined: one string to parse
-- in the daemon, not fifty)}.

local members, postings = {}, {}
for key, field in string.gmatch(ARGV[1], "([^\t\n]+)\t([^\n]+)") do
  members[#members + 1] = redis.call('HGET', key, field) or ''
end
for key in string.gmatch(ARGV[2], "[^\n]+") do
  postings[#postings + 1] = table.concat(
    redis.call('ZREVRANGEBYSCORE', key, ARGV[3], ARGV[4], 'LIMIT', 0, ARGV[5]), ',')
end
return {members, postings}
