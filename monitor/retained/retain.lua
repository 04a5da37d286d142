-- Keep a processed item: number it (its document number in the search index), append it
-- to the retained stream, trim the stream, and write the document's record into its block
-- of the documents table (the entry's id, then the record's tail given here).
-- KEYS[1] stream: the retained stream
-- KEYS[2] counter: the last document number
-- ARGV[1] maxlen: about how many entries to keep
-- ARGV[2] min_id: entries older than this id are trimmed
-- ARGV[3] docs: the documents table's name before its block number (the stream's slot)
-- ARGV[4] block: documents per block
-- ARGV[5] record: the record's tail (report time, outcome, story)
-- ARGV[6..] fields: the entry's field names and values, in turn
-- Reply: {entry id, document number}
local n = redis.call('INCR', KEYS[2])
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'doc', n, unpack(ARGV, 6))
redis.call('XTRIM', KEYS[1], 'MINID', '~', ARGV[2])
local ms, seq = string.match(id, '(%d+)-(%d+)')
local block = tonumber(ARGV[4])
local record = struct.pack('>dI2', tonumber(ms), tonumber(seq)) .. ARGV[5]
local at = (n % block) * string.len(record)
redis.call('SETRANGE', ARGV[3] .. math.floor(n / block), at, record)
return {id, n}
