"""Word vectors on disk and in memory: loading, writing, mapping, ranking."""
