"""The byte-level BPE tokenizer (`tokenizer`) and the token shards with their reader
(`shards.TokenShards`, what train/ and eval/ read)."""
