"""What happens to a document's text: normalisation (`clean`), filters with drop reasons
(`filters`, with the ISO-639 table in `languages`), deduplication (`dedup`) and removal of
evaluation documents (`decontam`)."""
