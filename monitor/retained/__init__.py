"""Retained items and the desk's cards: what the pipeline writes for people to read later.

`items` keeps each processed item's record (what it matched, its story) for a bounded time;
`cards` keeps the desk's summaries of stories and alerts. The pipeline writes both; the desk
(`monitor.web`), `rules test` and backfills read them.

May import: the store and the vocabulary. No stage.
"""
