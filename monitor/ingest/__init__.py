"""Ingest, the first stage: feeds in, items out.

Owns the feed list and its registry in Redis, polling (conditional GET, intervals, backoff,
per-host politeness, size and time limits), feed parsing, OPML, and the items stream that
polling appends to and processing reads.

May import: the store (`monitor.store`) and the vocabulary (`config`, `model`, `errors`,
`text`, `units`). Nothing of a later stage.
"""
