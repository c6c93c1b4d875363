"""`PrepConfig`: the whole prep config, typed and validated before any work starts.

`build_config(cfg)` turns the composed Hydra config (or any mapping) into dataclasses, building
every stage's config (clean, filters, dedup, decontam, tokenizer, source) so a wrong value fails at
once with a `ConfigError` naming its dotted key. `config_hash` hashes only what changes outputs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .tokenizer import TokenizerConfig

STAGES = ("all", "fetch", "map", "reduce")
# Keys that say where/how to run, not what to produce: left out of the config hash, so a resumed
# run (or a Slurm array task, or more workers) is accepted into the same out_dir.
RUN_ONLY_KEYS = ("out_dir", "workers", "stage", "task", "overwrite", "progress", "cache_dir", "hydra",
                 "summary")
RUN_ONLY_SOURCE_KEYS = ("path", "cache_dir", "parallel_downloads", "retries", "timeout_s", "backoff_s")

TOP_LEVEL_KEYS = frozenset({
    "out_dir", "workers", "stage", "task", "overwrite", "progress", "cache_dir", "source", "clean",
    "filter", "jats", "dedup", "decontam", "tokenizer", "split", "shards", "documents", "rejects", "summary",
})


def to_plain(cfg: Any) -> Any:
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(cfg, DictConfig | ListConfig):
            return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    return cfg


def _int(d: Mapping, key: str, section: str, default: int, lo: int = 0) -> int:
    v = d.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool) or v < lo:
        raise ConfigError(f"{section}.{key}" if section else key, f"must be an integer >= {lo}, got {v!r}")
    return v


def _bool(d: Mapping, key: str, section: str, default: bool) -> bool:
    v = d.get(key, default)
    if not isinstance(v, bool):
        raise ConfigError(f"{section}.{key}" if section else key, f"must be true or false, got {v!r}")
    return v


def _keys(d: Any, section: str, allowed: set[str]) -> dict:
    if d is None:
        return {}
    if not isinstance(d, Mapping):
        raise ConfigError(section, f"must be a mapping, got {d!r}")
    for k in d:
        if k not in allowed:
            raise ConfigError(f"{section}.{k}", f"unknown key; allowed: {', '.join(sorted(allowed))}")
    return dict(d)


@dataclass(frozen=True)
class SplitConfig:
    val_fraction: float = 0.005

    @classmethod
    def from_mapping(cls, d: Any) -> SplitConfig:
        d = _keys(d, "split", {"val_fraction"})
        v = d.get("val_fraction", cls.val_fraction)
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 <= v < 1.0:
            raise ConfigError("split.val_fraction", f"must be a number in [0, 1), got {v!r}")
        return cls(float(v))


@dataclass(frozen=True)
class ShardsConfig:
    max_tokens: int = 1 << 28  # 256M tokens: 512 MB uint16 shards
    batch_docs: int = 1024  # documents per encode_batch call
    processes: int = 0  # 0: encode in the main process (tokenizers' Rust threads use every core)

    @classmethod
    def from_mapping(cls, d: Any) -> ShardsConfig:
        d = _keys(d, "shards", {"max_tokens", "batch_docs", "processes"})
        return cls(_int(d, "max_tokens", "shards", cls.max_tokens, 1), _int(d, "batch_docs", "shards", cls.batch_docs, 1),
                   _int(d, "processes", "shards", cls.processes, 0))


@dataclass(frozen=True)
class DocumentsConfig:
    rows_per_file: int = 200_000
    row_group_size: int = 10_000
    compression: str = "zstd"

    @classmethod
    def from_mapping(cls, d: Any) -> DocumentsConfig:
        d = _keys(d, "documents", {"rows_per_file", "row_group_size", "compression"})
        comp = d.get("compression", cls.compression)
        if comp not in ("zstd", "snappy", "gzip", "none"):
            raise ConfigError("documents.compression", f"must be zstd, snappy, gzip or none, got {comp!r}")
        return cls(_int(d, "rows_per_file", "documents", cls.rows_per_file, 1),
                   _int(d, "row_group_size", "documents", cls.row_group_size, 1), comp)


@dataclass(frozen=True)
class SummaryConfig:
    histogram: bool = True
    print: bool = True

    @classmethod
    def from_mapping(cls, d: Any) -> SummaryConfig:
        d = _keys(d, "summary", {"histogram", "print"})
        return cls(_bool(d, "histogram", "summary", True), _bool(d, "print", "summary", True))


@dataclass(frozen=True)
class PrepConfig:
    out_dir: Path
    source: dict
    clean: Any
    filter: Any
    jats: Any
    dedup: Any
    decontam: Any
    tokenizer: TokenizerConfig
    split: SplitConfig = SplitConfig()
    shards: ShardsConfig = ShardsConfig()
    documents: DocumentsConfig = DocumentsConfig()
    summary: SummaryConfig = SummaryConfig()
    workers: int = 1
    stage: str = "all"
    task_index: int = 0
    task_count: int = 1
    overwrite: bool = False
    progress: bool = True
    rejects: bool = False
    cache_dir: Path | None = None
    raw: dict = field(default_factory=dict, repr=False)  # the plain resolved config, for the hash

    @property
    def config_hash(self) -> str:
        return config_hash(self.raw)

    @property
    def source_cache_dir(self) -> Path:
        return self.cache_dir if self.cache_dir is not None else self.out_dir / "cache"


def jats_options(d: Any) -> Any:
    """`cfg.jats` -> parse_jats.JatsOptions (what of a full text is kept besides body text)."""
    from .parse_jats import JatsOptions

    allowed = {f.name for f in dataclasses.fields(JatsOptions)}
    d = _keys(d, "jats", allowed)
    for k, v in d.items():
        if not isinstance(v, bool):
            raise ConfigError(f"jats.{k}", f"must be true or false, got {v!r}")
    return JatsOptions(**d)


def config_hash(raw: Mapping) -> str:
    """sha256 of the resolved config without the keys that only say where/how to run."""
    return hashlib.sha256(json.dumps(hashed_config(raw), sort_keys=True, default=str).encode()).hexdigest()


def hashed_config(raw: Mapping) -> dict:
    """The part of the config that decides the outputs (recorded in the manifest and hashed)."""
    d = {k: v for k, v in raw.items() if k not in RUN_ONLY_KEYS}
    if isinstance(d.get("source"), Mapping):
        d["source"] = {k: v for k, v in d["source"].items() if k not in RUN_ONLY_SOURCE_KEYS}
    if isinstance(d.get("shards"), Mapping):  # in-process or N processes: same bytes
        d["shards"] = {k: v for k, v in d["shards"].items() if k != "processes"}
    if isinstance(d.get("tokenizer"), Mapping) and d["tokenizer"].get("path"):
        # A pretrained tokenizer is identified by its content (hashed in the manifest), not its path.
        d["tokenizer"] = {k: v for k, v in d["tokenizer"].items() if k != "path"}
    return json.loads(json.dumps(d, sort_keys=True, default=str))


def build_config(cfg: Any) -> PrepConfig:
    """Validate everything and return the typed config; raises ConfigError naming the key."""
    from . import clean, decontam, dedup, filters, sources

    raw = to_plain(cfg)
    if not isinstance(raw, Mapping):
        raise ConfigError("<root>", "the prep config must be a mapping")
    raw = {k: v for k, v in raw.items() if k != "hydra"}
    for k in raw:
        if k not in TOP_LEVEL_KEYS:
            raise ConfigError(k, f"unknown key; allowed: {', '.join(sorted(TOP_LEVEL_KEYS))}")
    out_dir = raw.get("out_dir")
    if out_dir in (None, "", "???"):
        raise ConfigError("out_dir", "required: pass out_dir=<folder for the documents, tokenizer and shards>")
    stage = raw.get("stage", "all")
    if stage not in STAGES:
        raise ConfigError("stage", f"must be one of {', '.join(STAGES)}, got {stage!r}")
    task = _keys(raw.get("task"), "task", {"index", "count"})
    count = _int(task, "count", "task", 1, 1)
    index = _int(task, "index", "task", 0, 0)
    if index >= count:
        raise ConfigError("task.index", f"must be < task.count ({count}), got {index}")
    if count > 1 and stage not in ("map",):
        raise ConfigError("task.count", "task.count > 1 splits the map stage only: add stage=map "
                                        "(then run stage=reduce once all map tasks are done)")
    source = raw.get("source")
    if not isinstance(source, Mapping) or not source.get("name"):
        raise ConfigError("source", "choose a source: source=local source.path=<dir>, source=demo, ...")
    if source.get("path") == "???" or ("path" in source and source.get("path") in (None, "")
                                       and source.get("name") == "local"):
        raise ConfigError("source.path", "required with source=local: source.path=<dir or glob>")
    validate_source = getattr(sources, "validate_source", None)
    if validate_source is not None:
        validate_source(source)
    cache_dir = raw.get("cache_dir")
    return PrepConfig(
        out_dir=Path(str(out_dir)),
        source=dict(source),
        clean=clean.CleanConfig.from_mapping(raw.get("clean")),
        filter=filters.FilterConfig.from_mapping(raw.get("filter"), "filter"),
        jats=jats_options(raw.get("jats")),
        dedup=dedup.DedupConfig.from_mapping(raw.get("dedup")),
        decontam=decontam.DecontamConfig.from_mapping(raw.get("decontam")),
        tokenizer=TokenizerConfig.from_mapping(raw.get("tokenizer")),
        split=SplitConfig.from_mapping(raw.get("split")),
        shards=ShardsConfig.from_mapping(raw.get("shards")),
        documents=DocumentsConfig.from_mapping(raw.get("documents")),
        summary=SummaryConfig.from_mapping(raw.get("summary")),
        workers=_int(raw, "workers", "", 1, 1),
        stage=stage,
        task_index=index,
        task_count=count,
        overwrite=_bool(raw, "overwrite", "", False),
        progress=_bool(raw, "progress", "", True),
        rejects=_bool(raw, "rejects", "", False),
        cache_dir=Path(str(cache_dir)) if cache_dir not in (None, "") else None,
        raw=dict(raw),
    )
