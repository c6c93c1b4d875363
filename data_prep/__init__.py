"""Data preparation: PubMed + PMC Open Access -> clean documents -> tokenizer -> token shards."""
