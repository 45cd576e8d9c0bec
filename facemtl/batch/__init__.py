"""Collections of photos: the parallel engine, input streams and shards, outputs that resume."""
