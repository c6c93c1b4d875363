"""The stages and their driver: `driver.run(cfg)` runs map (`stage_map`) -> merge
(`stage_merge`) -> tokenizer and shards (`stage_tokenize`) -> `manifest`, `summary`. Outputs are
written atomically (`common.atomic`) and each unit of work ends with a completion marker
(`markers`); `records` is the Parquet layout of a `Document`."""
