"""The prep pipeline: sources -> map (per file) -> merge -> tokenizer -> shards -> manifest.

`run(cfg)` is what `python -m data_prep` calls. Stages and their outputs (under `out_dir`):

  map       work/map/<order>-<name>.parquet (+ .done)  one task per input file, parallel (stage_map)
  merge     documents/part-NNNNN.parquet, work/merge.json (+ .done)               (stage_merge)
  tokenizer tokenizer/tokenizer.json (+ .done)                                   (stage_tokenize)
  shards    shards/{train,val}-NNNNN.{bin,idx}, work/shards.json (+ .done)        (stage_tokenize)
  manifest  manifest.json, summary.json, doc_lengths.png                          (manifest, summary)

Every stage skips only on its completion marker (recording the same upstream outputs) and
otherwise redoes its whole unit of work, so a run killed at any point and restarted produces the
same bytes. `stage=map task.index=i task.count=N` runs the map tasks of input files i, i+N, i+2N,
... (a Slurm array); `stage=reduce` then runs the rest once. Everything a run builds (config,
filters, eval index, tokenizer) lives in this call and the objects it passes down: no module keeps
a run's state.

One run per out_dir: a run holds `common.lock.run_lock(out_dir)` (array map tasks a shared one,
so they run side by side), and a second run fails at once naming the holder. A finished corpus
is never mixed with other inputs (`inputs.py`); `append=true` adds new ones as a new generation
(`append.py`), and a plain run into an appended corpus is refused (overwrite=true rebuilds it).
When a run fails, the temp files it left are removed before the error reaches the user (a
disk-full error says so in one line).
"""

from __future__ import annotations

import errno
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from common.atomic import atomic_write_json, disk_full_message, remove_stale_temps
from common.config import ConfigError
from common.lock import LockedError, ensure_unlocked, run_lock
from data_prep.config import PrepConfig, Stage, build_config, config_hash, hashed_config
from data_prep.errors import PrepError
from data_prep.pipeline.append import append_config, appended_state, drop_appended, run_append
from data_prep.pipeline.generations import with_generations
from data_prep.pipeline.inputs import check_listed_inputs, input_entries, inputs_changed, resolve_input_files
from data_prep.pipeline.manifest import build_manifest, check_out_dir, claim_out_dir, write_manifest
from data_prep.pipeline.markers import pause_point
from data_prep.pipeline.stage_map import map_outputs, prune_map_outputs, run_map
from data_prep.pipeline.stage_merge import run_merge
from data_prep.pipeline.stage_tokenize import run_shards, run_tokenizer
from data_prep.pipeline.summary import length_histogram, print_summary
from data_prep.sources.config import DemoSource
from data_prep.text.decontam import EVAL_ENV
from data_prep.tokens.shards import IDX_DTYPE, dtype_name, token_dtype
from data_prep.tokens.tokenizer import tokenizer_info

log = logging.getLogger(__name__)
APP = "data_prep"


def doc_lengths(out_dir: Path, shards: dict[str, list[dict]]) -> np.ndarray:
    parts = []
    for lst in shards.values():
        for s in lst:
            ends = np.fromfile(out_dir / s["idx"], dtype=IDX_DTYPE).astype(np.int64)
            parts.append(np.diff(np.concatenate([[0], ends])))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def shares_out_dir(cfg: PrepConfig) -> bool:
    """Array map tasks (task.count > 1) share out_dir with each other; every other run holds it alone."""
    return cfg.task.count > 1


def run(cfg: Any, overrides: Sequence[str] | None = None) -> dict | None:
    """Run the configured stage(s); return the manifest when the run got that far.

    `overrides`: the command line's Hydra overrides (`python -m data_prep` passes them). With
    append=true they tell the keys the user set from the ones the corpus's config supplies
    (append.corpus_config); without them a key set to another value than its default counts as set."""
    t0 = time.time()
    cfg = build_config(cfg)
    shared = shares_out_dir(cfg)
    with run_lock(cfg.out_path, APP, shared=shared):
        try:
            return _run(cfg, t0, overrides)
        except BaseException:
            if not shared:  # this run alone writes here: every temp file is a partial file of it
                remove_stale_temps(cfg.out_path)
            raise


def decontam_off_reason(cfg: PrepConfig) -> str | None:
    """Why this run will not remove evaluation documents, or None when it will."""
    d = cfg.decontam
    if not d.enabled:
        return "decontam.enabled=false"
    if d.eval_dir or d.sources or isinstance(cfg.source, DemoSource):  # the demo brings its own eval set
        return None
    return f"no evaluation data: ${EVAL_ENV} is not set and decontam.eval_dir/decontam.sources are empty"


def warn_decontam_off(cfg: PrepConfig) -> None:
    """One loud line on stderr at the start (visible in a Slurm .out); the manifest says so too."""
    reason = decontam_off_reason(cfg)
    if reason is None or cfg.task.index != 0:
        return
    if not cfg.decontam.enabled:  # switched off on purpose: said once in the log, and in the manifest
        log.warning("decontamination is off (decontam.enabled=false): evaluation documents may be in the corpus")
    else:
        print(f"data_prep: WARNING: DECONTAMINATION IS OFF ({reason}): PubMedQA/BC5CDR/DDI/KD-DTI/HoC test "
              f"documents may end up in the training data and eval will refuse the checkpoint; fetch them with "
              f"`python -m eval.data fetch out_dir=<dir>` and set {EVAL_ENV}=<dir>", file=sys.stderr, flush=True)


def _run(cfg: PrepConfig, t0: float, overrides: Sequence[str] | None = None) -> dict | None:
    if cfg.append:  # a new generation of the corpus in out_dir, with its config (pipeline/append.py)
        cfg = append_config(cfg, overrides)
    warn_decontam_off(cfg)
    if cfg.append:
        return run_append(cfg, t0)
    chash = config_hash(cfg)
    claim_out_dir(cfg.out_path, chash, cfg.overwrite)
    appended = appended_state(cfg.out_path)
    if appended is not None:
        if not cfg.overwrite:
            raise PrepError(f"{cfg.out_dir}: {appended}; a run without append=true would rebuild generation 1 "
                            "only: add new inputs with append=true, or pass overwrite=true to rebuild the corpus "
                            "from this run's inputs alone")
        log.warning("%s: %s: deleting the appended generations (overwrite=true)", cfg.out_dir, appended)
        drop_appended(cfg.out_path)
    if not shares_out_dir(cfg):  # array tasks run side by side: one must not delete another's temp files
        remove_stale_temps(cfg.out_path)
    inputs, src_quarantined = resolve_input_files(cfg)
    if not inputs and not src_quarantined:
        raise PrepError(f"source {cfg.source.name}: no input files found ({cfg.source})")
    change = check_listed_inputs(cfg.out_path, inputs, src_quarantined)
    if change is not None:
        if not cfg.overwrite:
            raise inputs_changed(cfg.out_dir, change)
        log.warning("%s: inputs changed (%s): documents, tokenizer and shards will be rebuilt (overwrite=true)",
                    cfg.out_dir, change)
    if cfg.stage == Stage.fetch:
        return None
    timings: dict[str, float] = {"inputs": round(time.time() - t0, 3)}

    def timed(name: str, fn, *args):
        t = time.time()
        out = fn(*args)
        timings[name] = round(time.time() - t, 3)  # ~0 when the stage was already done (resume)
        return out

    if cfg.stage in (Stage.all, Stage.map):
        timed("map", run_map, cfg, inputs)
    if cfg.stage == Stage.map:
        return None
    map_files, input_records, quarantined = map_outputs(cfg, inputs)
    prune_map_outputs(cfg, inputs)
    pause_point("reduce")
    merge = timed("merge", run_merge, cfg, map_files, input_entries(input_records, src_quarantined))
    tok, tok_sha = timed("tokenizer", run_tokenizer, cfg, merge)
    shards = timed("shards", run_shards, cfg, merge, tok, tok_sha)
    vocab = tok.get_vocab_size()
    splits = {s: {"tokens": sum(x["tokens"] for x in lst), "documents": sum(x["documents"] for x in lst),
                  "shards": lst} for s, lst in shards.items()}
    counts = dict(merge["counts"])
    bad_records: dict[str, int] = {}  # JSONL/Parquet records skipped, by reason
    for r in input_records:
        for reason, n in r.get("bad_records", {}).items():
            bad_records[reason] = bad_records.get(reason, 0) + n
    counts.update(input_files=len(inputs) + len(src_quarantined),
                  quarantined_files=len(quarantined) + len(src_quarantined),
                  parsed=sum(r["records"] for r in input_records), bad_records=sum(bad_records.values()),
                  train_tokens=splits["train"]["tokens"], val_tokens=splits["val"]["tokens"])
    manifest = build_manifest(
        config_hash=chash, config=hashed_config(cfg), inputs=input_records,
        tokenizer=tokenizer_info(tok, tok_sha), dtype=dtype_name(token_dtype(vocab)), splits=splits,
        documents=merge["documents"], counts=dict(sorted(counts.items())), dropped=merge["dropped"],
        decontaminated=merge["decontaminated"], quarantined=src_quarantined + quarantined,
        decontam_summary=merge.get("decontam_summary"))
    manifest["duplicates"] = merge["duplicates"]
    manifest["bad_records"] = dict(sorted(bad_records.items()))
    manifest["decontamination"]["off"] = decontam_off_reason(cfg)  # null when eval sets were configured
    with_generations(manifest)  # a one-generation corpus; `append=true` adds the next ones
    lengths = doc_lengths(cfg.out_path, shards)
    if cfg.summary.histogram:
        length_histogram(lengths, cfg.out_path / "doc_lengths.png")
    pause_point("manifest")
    write_manifest(cfg.out_path, manifest)
    seconds = time.time() - t0
    atomic_write_json(cfg.out_path / "summary.json", {
        "seconds": round(seconds, 3), "stage_seconds": timings, "counts": manifest["counts"], "dropped": manifest["dropped"],
        "median_doc_tokens": float(np.median(lengths)) if lengths.size else 0.0})
    if cfg.summary.print:
        print_summary(manifest, seconds, cfg.out_path)
    return manifest


def fail(e: BaseException) -> None:
    """One clear line on stderr, not a traceback, and exit status 2."""
    print(f"data_prep: error: {' '.join(str(e).split())}", file=sys.stderr)
    sys.exit(2)  # SystemExit passes through Hydra's callback and error handling


def disk_full(e: OSError) -> str | None:
    """The one-line message for a full disk (or quota), None for any other OSError."""
    if e.errno not in (errno.ENOSPC, errno.EDQUOT):
        return None
    if e.strerror and "no space left on the device" in e.strerror:  # common.atomic's line already
        return e.strerror
    return disk_full_message(Path(e.filename or "."), e)


class CheckConfig(Callback):
    """`python -m data_prep` only (hydra.callbacks in conf/prep.yaml): after composition, before
    Hydra creates out_dir and writes out_dir/.hydra, check the config, the out_dir guard and that no
    other run holds out_dir, so a wrong value, another config's out_dir or a concurrent run leaves
    nothing on disk (the lock itself is taken by `run`)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            cfg = build_config(config)
            if cfg.append:  # the corpus's config, not run.json's hash, decides (the source may differ)
                append_config(cfg, list(config.hydra.overrides.task))
            else:
                check_out_dir(cfg.out_path, config_hash(cfg), cfg.overwrite)
            ensure_unlocked(cfg.out_path, shared=shares_out_dir(cfg))
        except (ConfigError, PrepError, LockedError) as e:
            fail(e)
