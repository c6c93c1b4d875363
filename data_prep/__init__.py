"""Data preparation: PubMed + PMC Open Access -> clean documents -> tokenizer -> token shards.

The folders follow the pipeline: `sources/` (where input files come from) -> `parse/` (secure
XML -> `Document`) -> `text/` (clean, filter, dedup, decontaminate) -> `tokens/` (tokenizer and
token shards, read by train/eval through `data_prep.tokens.shards.TokenShards`) -> `pipeline/`
(the stages, their driver and the manifest). `config.py` is the typed schema of `conf/prep.yaml`.
"""
