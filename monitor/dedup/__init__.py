"""Dedup, the third stage: an article analysed once (`analysis`), its fingerprints (pure:
`fingerprint`, `signals`, `wires`), and the Redis-backed index that places it: the same
item, an exact or near copy, or a report of a story (`index` on one server, `spread` on a
cluster; the Lua beside them).

May import: `extract`, `ingest` (canonical URLs), the store and the vocabulary.
"""
