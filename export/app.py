"""`run(cfg)`: a checkpoint (or an exported folder) -> a transformers model folder with a model card.

The folder is written under a temp name beside out_dir and renamed into place at the end, so
out_dir holds either the previous export or the complete new one, never a mix.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch

from common.atomic import TEMP_SUFFIX, atomic_write_json, atomic_write_text
from common.config import ConfigError

from .card import data_summary, find_eval_results, model_card
from .config import ExportConfig, Format, validate
from .hf import (
    INFO_FILE,
    ExportError,
    _transformers_version,
    is_exported,
    load_exported,
    write_biogpt,
    write_remote_code,
    write_tokenizer,
)

log = logging.getLogger(__name__)


@dataclass
class ExportResult:
    out_dir: Path
    format: str
    files: list[str]
    eval_results: int
    data_known: bool


def load_any(path: str | Path):
    """(Decoder, Tokenizer | None, info) from a train/ checkpoint file or an exported folder."""
    if is_exported(path):
        return load_exported(path)
    from common.checkpoint import load_model

    return load_model(path)


def resolve_format(requested: Format, model) -> str:
    from model.convert_hf import biogpt_incompatibilities

    problems = biogpt_incompatibilities(model.config)
    if requested == Format.biogpt and problems:
        raise ConfigError("format", "biogpt needs BioGPT's dense shape, this checkpoint has not: " + "; ".join(problems)
                          + ". Use format=auto (remote code for this model)")
    if requested == Format.auto:
        return Format.remote_code.value if problems else Format.biogpt.value
    return requested.value


def run(cfg) -> ExportResult:
    c: ExportConfig = validate(cfg)  # before anything is loaded or written
    try:
        return _export(c)
    except BaseException:
        # Hydra makes out_dir (its run folder) before run(): a failed export leaves no empty folder.
        out = Path(c.out_dir)
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise


def _export(c: ExportConfig) -> ExportResult:
    model, tok, info = load_any(c.checkpoint)
    if tok is None:
        raise ExportError(f"{c.checkpoint}: no tokenizer found (looked for tokenizer.json in the run folder and "
                          "the path the checkpoint records); copy the run's tokenizer.json beside checkpoints/")
    fmt = resolve_format(c.format, model)
    dtype = getattr(torch, c.dtype.value)
    out = Path(c.out_dir)
    name = c.model_name or out.name
    _remove_stale_staging(out)
    staging = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}{TEMP_SUFFIX}"
    staging.mkdir(parents=True)
    try:
        if fmt == Format.biogpt.value:
            write_biogpt(model, staging, dtype)
        else:
            write_remote_code(model, staging, dtype, _transformers_version())
        original_tok = write_tokenizer(tok, staging, model.config.max_seq_len)
        results = list(info.get("eval_results") or []) if is_exported(c.checkpoint) else []
        known = {r.get("file") for r in results}
        results += [r for r in find_eval_results(c.checkpoint, c.eval_results, c.find_eval_results)
                    if r["file"] not in known]
        data = data_summary(info.get("data_manifest"))
        params = {"total": model.num_params(), "non_embedding": model.num_params(non_embedding=True)}
        atomic_write_text(staging / "README.md", model_card(
            name=name, fmt=fmt, license=c.license, info=info, params=params, data=data, results=results,
            dtype=c.dtype.value, checkpoint=c.checkpoint))
        atomic_write_json(staging / INFO_FILE, {
            "format_version": 1, "format": fmt, "dtype": c.dtype.value, "model_name": name,
            "source_checkpoint": info.get("source_checkpoint") or info.get("checkpoint"),
            "step": info.get("step"), "tokens_seen": info.get("tokens_seen"), "task": info.get("task"),
            "model_config": model.config.to_dict(), "config": info.get("config") or {},
            "data_manifest": info.get("data_manifest"), "eval_results": results,
            "tokenizer_original": original_tok, "parameters": params})
        files = sorted(p.name for p in staging.iterdir())
        _swap_in(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("exported %s (%s, %d files; %d eval results; training data %s) -> %s", Path(c.checkpoint).name, fmt,
             len(files), len(results), "described" if data else "unknown", out)
    return ExportResult(out, fmt, files, len(results), data is not None)


def _remove_stale_staging(out: Path) -> None:
    """Temp folders of an export that was killed before its rename (only this project's names)."""
    if out.parent.is_dir():
        for p in out.parent.glob(f".{out.name}.*{TEMP_SUFFIX}"):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)


def _swap_in(staging: Path, out: Path) -> None:
    """Rename the finished folder onto out_dir. An empty out_dir (Hydra makes the run folder) is
    replaced directly; a previous export is moved aside first and deleted after."""
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}{TEMP_SUFFIX}"
        os.replace(out, old)
    os.replace(staging, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
