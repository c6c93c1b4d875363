"""Where the input files come from: NCBI PubMed, PMC Open Access (S3), local files, the demo corpus.

One entry point for the pipeline::

    inputs = resolve_inputs(cfg.source, cache_dir)   # -> list[InputFile], in load order

`source_cfg["name"]` picks the source (`pubmed_baseline`, `pubmed_updates`, `pmc_oa`, `local`,
`demo`); its other keys are validated before any work (`ConfigError` naming `source.<key>`).
Files that fail (404, wrong md5, hostile tarball) are logged as one line each and appended to
`quarantine` when given; the rest complete. See docs/sources.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from data_prep.errors import ConfigError, PrepError
from data_prep.sources import local, pmc_oa, pubmed
from data_prep.sources.config import SOURCE_NAMES, get_int, to_plain
from data_prep.sources.types import InputFile

__all__ = ["SOURCE_NAMES", "InputFile", "resolve_inputs", "validate_source"]

_DEMO_KEYS = frozenset({"seed", "n_abstracts", "n_fulltext"})


def validate_source(source_cfg: Mapping) -> dict:
    """Check a source config without touching the network or the disk cache; returns it as a dict."""
    cfg = to_plain(source_cfg)
    name = cfg.get("name")
    if name not in SOURCE_NAMES:
        raise ConfigError("source.name", f"must be one of {', '.join(SOURCE_NAMES)}, got {name!r}")
    if name in pubmed.DEFAULT_URLS:
        pubmed.validate(cfg)
    elif name == "pmc_oa":
        pmc_oa.validate(cfg)
    elif name == "local":
        local.validate(cfg)
    else:
        unknown = sorted(set(cfg) - _DEMO_KEYS - {"name"})
        if unknown:
            raise ConfigError(f"source.{unknown[0]}", f"unknown key for source 'demo'; allowed: {', '.join(sorted(_DEMO_KEYS))}")
        for key in _DEMO_KEYS:
            get_int(cfg, key, None)
    return cfg


def resolve_inputs(source_cfg: Mapping, cache_dir: Path, *, quarantine: list[PrepError] | None = None) -> list[InputFile]:
    """Validate `source_cfg`, fetch/extract what it names into `cache_dir`, return files in load order."""
    cfg = validate_source(source_cfg)
    cache_dir = Path(cache_dir)
    name = cfg["name"]
    if name in pubmed.DEFAULT_URLS:
        return pubmed.resolve(cfg, cache_dir, quarantine)
    if name == "pmc_oa":
        return pmc_oa.resolve(cfg, cache_dir, quarantine)
    if name == "local":
        return local.resolve(cfg, cache_dir, quarantine)
    from data_prep.sources.demo import generate_demo_corpus  # written separately; imported only when used

    # Only the keys given: the generator's own defaults stay the single source of truth.
    paths = generate_demo_corpus(cache_dir / "demo", **{k: cfg[k] for k in sorted(_DEMO_KEYS) if k in cfg})
    return [InputFile(path=Path(p), order=i, meta={}) for i, p in enumerate(paths)]
