"""The typed config of `python -m export`: the schema of conf/export.yaml (Hydra's ConfigStore, so
an unknown key or a wrong type fails while composing) and the checks a type cannot express."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from omegaconf import MISSING

from common.config import ConfigError, to_plain


class Format(str, Enum):
    auto = "auto"  # biogpt when the checkpoint has BioGPT's dense shape, else remote_code
    biogpt = "biogpt"  # a plain BioGptForCausalLM (no remote code)
    remote_code = "remote_code"  # the project's decoder files + a transformers wrapper (trust_remote_code=True)


class DType(str, Enum):
    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"


@dataclass
class ExportConfig:
    checkpoint: str = MISSING  # a checkpoint written by `python -m train`, or an exported folder
    out_dir: str = MISSING  # the folder to write (a transformers model folder, ready for the hub)
    format: Format = Format.auto
    dtype: DType = DType.float32  # dtype of the saved weights
    model_name: str | None = None  # title of the model card (default: the out_dir's name)
    license: str = "other"  # the card's licence tag; see the licence mix the card lists
    eval_results: list[str] = field(default_factory=list)  # more results.json files for the card
    find_eval_results: bool = True  # look for results.json of this checkpoint around its run folder
    overwrite: bool = False  # replace an existing out_dir that holds files


def register() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="export_schema", node=ExportConfig)


def validate(cfg) -> ExportConfig:
    """DictConfig (or ExportConfig) -> ExportConfig with resolved paths; raises ConfigError naming the key."""
    raw = to_plain(cfg)
    if isinstance(raw, dict):
        raw = {k: v for k, v in raw.items() if k != "hydra"}
        missing = [k for k in ("checkpoint", "out_dir") if raw.get(k) in (None, "", "???")]
        if missing:
            what = {"checkpoint": "checkpoint=<run_dir>/checkpoints/last.ckpt (or an exported folder)",
                    "out_dir": "out_dir=<folder to write>"}
            raise ConfigError(missing[0], f"missing; pass {what[missing[0]]}")
        raw["format"] = Format(raw.get("format", "auto"))
        raw["dtype"] = DType(raw.get("dtype", "float32"))
        c = ExportConfig(**raw)
    else:
        c = raw
    try:
        c.format, c.dtype = Format(c.format), DType(c.dtype)
    except ValueError as e:
        raise ConfigError("format" if "Format" in str(e) else "dtype", str(e)) from None
    checkpoint = checkpoint_path(c.checkpoint)
    out_dir = Path(c.out_dir).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError("out_dir", f"{out_dir} is a file; pass a folder")
    if checkpoint.resolve() == out_dir.resolve():
        raise ConfigError("out_dir", "is the folder being exported; pick another out_dir")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not c.overwrite:
        raise ConfigError("out_dir", f"{out_dir} already holds files; pass overwrite=true to replace it, or "
                                     "choose another out_dir")
    for i, p in enumerate(c.eval_results):
        if not Path(p).expanduser().is_file():
            raise ConfigError(f"eval_results[{i}]", f"{p} is not a file; pass results.json files written by `python -m eval`")
    if c.model_name is not None and not c.model_name.strip():
        raise ConfigError("model_name", "is empty; pass a name or leave it null")
    if not c.license.strip():
        raise ConfigError("license", "is empty; pass a hub licence id (e.g. mit, apache-2.0) or 'other'")
    c.checkpoint, c.out_dir = str(checkpoint.resolve()), str(out_dir.resolve())
    c.eval_results = [str(Path(p).expanduser().resolve()) for p in c.eval_results]
    return c


def checkpoint_path(value: str) -> Path:
    """`checkpoint=`: a checkpoint written by `python -m train` or a folder written by `python -m
    export` (export and serve both take either)."""
    path = Path(value).expanduser()
    if not path.exists():
        raise ConfigError("checkpoint", f"{path} does not exist; pass a checkpoint written by `python -m train` "
                                        "(<run_dir>/checkpoints/last.ckpt) or a folder written by `python -m export`")
    if path.is_dir() and not (path / "config.json").is_file():
        raise ConfigError("checkpoint", f"{path} is a folder without config.json; pass a checkpoint file "
                                        "(<run_dir>/checkpoints/last.ckpt) or a folder written by `python -m export`")
    return path
