"""Where data lives and what identifies it: storage roots, feature shards, video reading,
content hashes and the extraction settings that key a shard."""
