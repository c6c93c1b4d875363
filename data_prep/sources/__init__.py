"""Where the input files come from: NCBI PubMed, PMC Open Access (S3), local files, the demo corpus.

One entry point for the pipeline::

    inputs = resolve_inputs(cfg.source, cache_dir)   # -> list[InputFile], in load order

`cfg.source` is one of the dataclasses of `sources/config.py` (or a mapping, typed against the
schema its `name` picks); it is checked before any work (`ConfigError` naming `source.<key>`).
Files that fail (404, wrong md5, hostile tarball) are logged as one line each and appended to
`quarantine` when given; the rest complete. See docs/sources.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from data_prep.errors import PrepError
from data_prep.sources import local, pmc_oa, pubmed
from data_prep.sources.config import (
    SOURCE_NAMES,
    DemoSource,
    LocalSource,
    PmcOaSource,
    PubmedSource,
    SourceConfig,
    source_config,
)
from data_prep.sources.types import InputFile

__all__ = ["SOURCE_NAMES", "InputFile", "SourceConfig", "resolve_inputs", "validate_source"]


def validate_source(source_cfg: SourceConfig | Mapping) -> SourceConfig:
    """Check a source config without touching the network or the disk cache; returns it typed."""
    return source_config(source_cfg)


def resolve_inputs(source_cfg: SourceConfig | Mapping, cache_dir: Path, *,
                   quarantine: list[PrepError] | None = None) -> list[InputFile]:
    """Check `source_cfg`, fetch/extract what it names into `cache_dir`, return files in load order."""
    src = source_config(source_cfg)
    cache_dir = Path(cache_dir)
    if isinstance(src, PubmedSource):
        return pubmed.resolve(src, cache_dir, quarantine)
    if isinstance(src, PmcOaSource):
        return pmc_oa.resolve(src, cache_dir, quarantine)
    if isinstance(src, LocalSource):
        return local.resolve(src, cache_dir, quarantine)
    assert isinstance(src, DemoSource)  # source_config accepts only the schemas of SOURCE_NAMES
    from data_prep.sources import demo  # lazy: keeps the demo generator off the production sources' imports

    return demo.resolve(src, cache_dir)
