"""The store: Redis, as every stage meets it.

Owns connections (one server, the embedded server, Sentinel, Cluster, a local cluster for
development), the key names (`keys`) and their layout over slots (`layout`), scripts and how
they are loaded (`scripts`), batching of commands (`batched`), Redis's refusals wherever
they arrive (`refusals`), the guard of its eviction policy (`redisguard`), consumer groups
on streams (`streams`) and their lag (`retention`).

May import: the vocabulary (`config`, `errors`) only. Knows no stage.
"""
