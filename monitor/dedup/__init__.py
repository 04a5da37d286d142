"""Dedup: fingerprints (pure) and the Redis-backed index that places items into stories."""
