"""`PrepConfig`: the schema of `conf/prep.yaml`, the one check function, and the config hash.

The dataclasses here and in each stage's module (`ParseLimits`, `CleanConfig`, `FilterConfig`,
`JatsOptions`, `DedupConfig`, `DecontamConfig`, the tokenizer and source schemas) are registered in Hydra's
ConfigStore (`register_schemas`): `prep.yaml` and every `source/`, `tokenizer/` file starts its
defaults list with its schema, so OmegaConf rejects an unknown key, a wrong type or an enum value
outside its set while composing, before anything runs or is written. Each default is written once,
in its dataclass; the YAML files hold presets only.

What a type cannot say (ranges, cross-field rules, paths that must exist) is checked by
`check_config`, which raises `common.config.ConfigError` naming the dotted key. `build_config`
does both for a plain mapping (tests, `slurm/submit.py`); `python -m data_prep` calls it from a
Hydra callback that runs before Hydra creates the output folder.

`config_hash` hashes only what changes the outputs. Which input files went in is recorded and
checked separately (`pipeline/inputs.py`), so a rerun with other inputs is refused, not mixed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from tokenizers import Tokenizer

from common.config import ConfigError, check_range, to_plain
from data_prep.parse.jats import JatsOptions
from data_prep.parse.xml_safety import ParseLimits
from data_prep.sources.config import (
    AFTER_CORPUS,
    SOURCE_SCHEMAS,
    HttpSource,
    SourceConfig,
    check_source,
    source_schema,
)
from data_prep.structured import plain, typed
from data_prep.text.clean import CleanConfig
from data_prep.text.decontam import DecontamConfig
from data_prep.text.dedup import DedupConfig
from data_prep.text.filters import FilterConfig
from data_prep.tokens.fast_encode import qualification, tiktoken_available
from data_prep.tokens.tokenizer import (
    SPECIAL_TOKENS,
    TOKENIZER_SCHEMAS,
    BpeTokenizerConfig,
    PretrainedTokenizerConfig,
    TokenizerConfig,
)


class Stage(str, Enum):
    all = "all"
    fetch = "fetch"  # resolve/download the inputs only
    map = "map"
    reduce = "reduce"


class Compression(str, Enum):
    zstd = "zstd"
    snappy = "snappy"
    gzip = "gzip"
    none = "none"


@dataclass
class TaskConfig:
    """stage=map only: this task maps input files k with k % count == index (a Slurm array)."""

    index: int = 0
    count: int = 1


@dataclass
class SplitConfig:
    val_fraction: float = 0.005  # by a hash of the document id: adding data never moves a document


class ShardEncoder(str, Enum):
    """Which library turns text into ids in the shard stage; the ids (and the shards) are the same."""

    auto = "auto"  # tiktoken when installed and the tokenizer is data_prep's byte-level BPE, else tokenizers
    tiktoken = "tiktoken"  # refused (config error) when it cannot be used
    tokenizers = "tokenizers"


@dataclass
class ShardsConfig:
    max_tokens: int = 1 << 28  # 256M tokens: 512 MB uint16 shards
    batch_docs: int = 1024  # documents per encode call
    # -1: one process per `workers` (threads in this process when workers=1); 0: encode in this
    # process on every core (threads); N: N processes, one thread each, that read the documents too.
    processes: int = -1
    encoder: ShardEncoder = ShardEncoder.auto  # data_prep/tokens/fast_encode.py


@dataclass
class DocumentsConfig:
    rows_per_file: int = 200_000
    row_group_size: int = 10_000
    compression: Compression = Compression.zstd


@dataclass
class SummaryConfig:
    histogram: bool = True  # doc_lengths.png
    print: bool = True


@dataclass
class PrepConfig:
    """The whole `python -m data_prep` config (docs/data_prep.md)."""

    source: SourceConfig = MISSING  # source=<name>: the schemas in data_prep/sources/config.py
    tokenizer: TokenizerConfig = MISSING  # tokenizer=bpe | pretrained
    out_dir: str = "runs/data/${source.name}"  # documents/, tokenizer/, shards/, manifest.json go here
    workers: int = 1  # processes for the map stage (one input file per task)
    stage: Stage = Stage.all
    task: TaskConfig = field(default_factory=TaskConfig)
    overwrite: bool = False  # true: delete outputs of a different config in out_dir instead of refusing
    # true: add the source's new input files to the finished corpus in out_dir as a new generation
    # (pipeline/append.py); the corpus's own config governs everything but the source.
    append: bool = False
    progress: bool = True
    rejects: bool = False  # true: write rejects/<file>.jsonl (id, reason) for every filtered-out record
    cache_dir: str | None = None  # downloads / extracted tarballs / demo corpus; null: ${out_dir}/cache
    parse: ParseLimits = field(default_factory=ParseLimits)  # memory bound per record (docs/data_prep.md)
    clean: CleanConfig = field(default_factory=CleanConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    jats: JatsOptions = field(default_factory=JatsOptions)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    decontam: DecontamConfig = field(default_factory=DecontamConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    shards: ShardsConfig = field(default_factory=ShardsConfig)
    documents: DocumentsConfig = field(default_factory=DocumentsConfig)
    summary: SummaryConfig = field(default_factory=SummaryConfig)

    @property
    def out_path(self) -> Path:
        return Path(self.out_dir)

    @property
    def source_cache_dir(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else self.out_path / "cache"


def register_schemas() -> None:
    """Register the schemas conf/ refers to (`prep_schema`, `source/<name>_schema`,
    `tokenizer/<kind>_schema`) in Hydra's ConfigStore; call before composing `prep`."""
    from common.hydra import register_help_resolver

    register_help_resolver()  # --help lists only this app's groups (conf/prep.yaml hydra.help)
    cs = ConfigStore.instance()
    cs.store(name="prep_schema", node=PrepConfig)
    for name, schema in SOURCE_SCHEMAS.items():
        cs.store(group="source", name=f"{name}_schema", node=schema)
    for kind, schema in TOKENIZER_SCHEMAS.items():
        cs.store(group="tokenizer", name=f"{kind}_schema", node=schema)


# ---- building and checking -------------------------------------------------------------------


def build_config(cfg: Any) -> PrepConfig:
    """The typed, checked config from a composed DictConfig or a plain mapping.

    Types, unknown keys and enum values are checked by OmegaConf against the schema (the source
    and tokenizer schemas are picked by `source.name` and `tokenizer.kind`), then `check_config`
    checks the rest. Raises ConfigError naming the key.
    """
    if isinstance(cfg, PrepConfig):
        check_config(cfg)
        return cfg
    if isinstance(cfg, DictConfig) and "hydra" in cfg:  # the callback sees Hydra's own node: not ours
        cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    values = to_plain(cfg)
    if not isinstance(values, Mapping):
        raise ConfigError("<root>", "the prep config must be a mapping")
    values = {k: v for k, v in values.items() if k != "hydra"}
    source = values.get("source")
    if not isinstance(source, Mapping) or not source.get("name"):
        raise ConfigError("source", "choose a source: source=local source.path=<dir>, source=demo, ...")
    tokenizer = values.get("tokenizer") or {}
    if not isinstance(tokenizer, Mapping):
        raise ConfigError("tokenizer", f"must be a mapping, got {tokenizer!r}")
    kind = tokenizer.get("kind", "bpe")
    if kind not in TOKENIZER_SCHEMAS:
        raise ConfigError("tokenizer.kind", f"unknown tokenizer {kind!r}: use tokenizer=bpe or tokenizer=pretrained")
    schema = OmegaConf.structured(PrepConfig)
    schema.source = OmegaConf.structured(source_schema(source["name"]))
    schema.tokenizer = OmegaConf.structured(TOKENIZER_SCHEMAS[kind])
    built = typed(schema, values)
    check_config(built)
    return built


def check_config(cfg: PrepConfig) -> None:
    """Every check a type cannot express, for the whole app; ConfigError names the dotted key."""
    if not cfg.out_dir or cfg.out_dir == MISSING:
        raise ConfigError("out_dir", "required: pass out_dir=<folder for the documents, tokenizer and shards>")
    check_range("workers", cfg.workers, 1)
    check_range("task.count", cfg.task.count, 1)
    check_range("task.index", cfg.task.index, 0, cfg.task.count, hi_open=True)
    if cfg.task.count > 1 and cfg.stage != Stage.map:
        raise ConfigError("task.count", "task.count > 1 splits the map stage only: add stage=map "
                                        "(then run stage=reduce once all map tasks are done)")
    check_source(cfg.source)
    if cfg.append and cfg.overwrite:
        raise ConfigError("append", "append=true adds a generation to the corpus in out_dir and overwrite=true "
                                    "would delete it: pass one of them")
    if getattr(cfg.source, "after", None) == AFTER_CORPUS and not cfg.append:
        raise ConfigError("source.after", "'corpus' reads the newest file number of the corpus in out_dir: "
                                          "it needs append=true (or give a file number)")
    _check_tokenizer(cfg.tokenizer)
    check_range("parse.max_record_nodes", cfg.parse.max_record_nodes, 1)
    check_range("parse.max_record_mb", cfg.parse.max_record_mb, 1)
    f = cfg.filter
    check_range("filter.min_chars", f.min_chars, 0)
    check_range("filter.min_words", f.min_words, 0)
    check_range("filter.langid_min_prob", f.langid_min_prob, 0.0, 1.0)
    check_range("filter.langid_max_chars", f.langid_max_chars, 1)
    if f.keep_languages is not None:
        if not f.keep_languages:
            raise ConfigError("filter.keep_languages", "is empty, which would drop everything; use null to keep all languages")
        for code in f.keep_languages:
            if code != "*" and not code.replace("-", "").isalpha():
                raise ConfigError("filter.keep_languages", f"{code!r} is not a language code like 'eng'")
    d = cfg.decontam
    if d.ngram < 3:
        raise ConfigError("decontam.ngram", f"must be >= 3 (shorter n-grams match unrelated text), got {d.ngram}")
    check_range("decontam.min_overlap", d.min_overlap, 0.0, 1.0, lo_open=True)
    d.listed_sources()  # the shape of decontam.sources
    if d.enabled:
        d.resolved_sources()  # the eval files must exist
    check_range("split.val_fraction", cfg.split.val_fraction, 0.0, 1.0, hi_open=True)
    check_range("shards.max_tokens", cfg.shards.max_tokens, 1)
    check_range("shards.batch_docs", cfg.shards.batch_docs, 1)
    check_range("shards.processes", cfg.shards.processes, -1)
    _check_shard_encoder(cfg)
    check_range("documents.rows_per_file", cfg.documents.rows_per_file, 1)
    check_range("documents.row_group_size", cfg.documents.row_group_size, 1)


def _check_shard_encoder(cfg: PrepConfig) -> None:
    """shards.encoder=tiktoken must be usable: tiktoken installed and, for a pretrained tokenizer
    (known now, unlike a trained one, which always qualifies), the right shape."""
    if cfg.shards.encoder != ShardEncoder.tiktoken:
        return
    if not tiktoken_available():
        raise ConfigError("shards.encoder", "tiktoken is not installed: pip install tiktoken, or use "
                                            "shards.encoder=auto")
    if isinstance(cfg.tokenizer, PretrainedTokenizerConfig):
        try:
            tok = Tokenizer.from_file(cfg.tokenizer.path)
        except Exception:  # an unreadable file: the tokenizer stage reports it with its own message
            return
        reason = qualification(tok)
        if reason is not None:
            raise ConfigError("shards.encoder", f"tiktoken cannot encode for {cfg.tokenizer.path}: {reason}; "
                                                "use shards.encoder=auto or tokenizers")


def _check_tokenizer(t: TokenizerConfig) -> None:
    expected = TOKENIZER_SCHEMAS.get(t.kind)
    if expected is None or type(t) is not expected:
        raise ConfigError("tokenizer.kind", f"{t.kind!r} is set by the tokenizer group: use tokenizer=bpe or "
                                            "tokenizer=pretrained")
    if isinstance(t, BpeTokenizerConfig):
        check_range("tokenizer.vocab_size", t.vocab_size, 256 + len(SPECIAL_TOKENS))  # 256 bytes + specials
        check_range("tokenizer.min_frequency", t.min_frequency, 1)
        check_range("tokenizer.max_train_docs", t.max_train_docs, 1)
        check_range("tokenizer.max_train_bytes", t.max_train_bytes, 1)
    elif isinstance(t, PretrainedTokenizerConfig):
        if not t.path or t.path == MISSING:
            raise ConfigError("tokenizer.path", "required with tokenizer=pretrained: tokenizer.path=<tokenizer.json>")
        if not Path(t.path).is_file():
            raise ConfigError("tokenizer.path", f"file not found: {t.path}")


# ---- the config hash ---------------------------------------------------------------------------

# Keys that say where/how to run, not what to produce: left out of the config hash, so a resumed
# run (or a Slurm array task, or more workers) is accepted into the same out_dir.
RUN_ONLY_KEYS = ("out_dir", "workers", "stage", "task", "overwrite", "append", "progress", "cache_dir", "summary")
# How the shard stage encodes (processes or threads, tiktoken or tokenizers) never changes its bytes.
RUN_ONLY_SHARDS_KEYS = ("processes", "encoder")
# source.path is left out too: where the files are does not change the outputs, the files do, and
# they are checked by name, size and sha256 (pipeline/inputs.py). So are the network knobs, and
# PubMed's `after`, which only narrows which files are listed (the input set records them).
RUN_ONLY_SOURCE_KEYS = ("path", "after", *(f.name for f in dataclasses.fields(HttpSource) if f.name != "name"))


def hashed_config(cfg: PrepConfig | DictConfig) -> dict:
    """The part of the config that decides the outputs (recorded in the manifest and hashed)."""
    d = {k: v for k, v in plain(cfg).items() if k not in RUN_ONLY_KEYS}
    d["source"] = {k: v for k, v in d["source"].items() if k not in RUN_ONLY_SOURCE_KEYS}
    d["shards"] = {k: v for k, v in d["shards"].items() if k not in RUN_ONLY_SHARDS_KEYS}
    # A pretrained tokenizer is identified by its content (hashed in the manifest), not its path.
    d["tokenizer"] = {k: v for k, v in d["tokenizer"].items() if k != "path"}
    return json.loads(json.dumps(d, sort_keys=True, default=str))


def config_hash(cfg: PrepConfig | DictConfig) -> str:
    """sha256 of `hashed_config`."""
    return hashlib.sha256(json.dumps(hashed_config(cfg), sort_keys=True, default=str).encode()).hexdigest()


def default_hashed_config() -> dict:
    """`hashed_config` of the schema defaults, without the source (it has no default) and with the
    default tokenizer group's (conf/prep.yaml: bpe). What `append=true` compares a config passed to
    `run(cfg)` with to tell the keys its caller set (pipeline/append.py)."""
    d: dict[str, Any] = {}
    for f in dataclasses.fields(PrepConfig):
        if f.name in RUN_ONLY_KEYS or f.name in ("source", "tokenizer"):
            continue
        value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        d[f.name] = plain(value) if dataclasses.is_dataclass(value) else value
    d["tokenizer"] = {k: v for k, v in plain(BpeTokenizerConfig()).items() if k != "path"}
    d["shards"] = {k: v for k, v in d["shards"].items() if k not in RUN_ONLY_SHARDS_KEYS}
    return json.loads(json.dumps(d, sort_keys=True, default=str))


# The config groups of conf/prep.yaml. `tokenizer=pretrained` on the command line chooses a schema,
# i.e. sets the key naming it; the groups' YAML files set nothing else.
GROUP_KEYS = {"source": "source.name", "tokenizer": "tokenizer.kind"}


def override_keys(overrides: Iterable[str]) -> frozenset[str]:
    """The dotted keys that Hydra command-line overrides set: `filter.min_words=30`, `+a.b=1`, `~a.b`,
    `tokenizer=bpe` (-> tokenizer.kind); Hydra's own (`hydra.*`, `hydra/...`) are left out."""
    keys = set()
    for o in overrides:
        key = str(o).split("=", 1)[0].lstrip("+~").split("@", 1)[0].strip()
        if key and key != "hydra" and not key.startswith(("hydra.", "hydra/")):
            keys.add(GROUP_KEYS.get(key, key))
    return frozenset(keys)
