# docs/distributed.md: one pipeline per rank, shard modes, per-rank vs shared caches.
conveyor_docs_example(distributed)
