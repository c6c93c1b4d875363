"""The prep pipeline: sources -> map (per file) -> merge -> tokenizer -> shards -> manifest.

`run(cfg)` is what `python -m data_prep` calls. Stages and their outputs (under `out_dir`):

  map       work/map/<order>-<name>.parquet (+ .done)  one task per input file, parallel
  merge     documents/part-NNNNN.parquet, work/merge.json (+ .done)
  tokenizer tokenizer/tokenizer.json (+ .done)
  shards    shards/{train,val}-NNNNN.{bin,idx}, work/shards.json (+ .done)
  manifest  manifest.json, summary.json, doc_lengths.png

Every stage skips only on its completion marker and otherwise redoes its whole unit of work, so
a run killed at any point and restarted produces the same bytes. `stage=map task.index=i
task.count=N` runs the map tasks of input files i, i+N, i+2N, ... (a Slurm array);
`stage=reduce` then runs the rest once.
"""

from __future__ import annotations

import inspect
import multiprocessing as mp
import shutil
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from .config import PrepConfig, build_config, config_hash, hashed_config
from .document import Document
from .errors import PrepError
from .manifest import build_manifest, claim_out_dir, write_manifest
from .shards import IDX_DTYPE, dtype_name, split_of, token_dtype
from .stages import (
    atomic_write_json,
    is_done,
    mark_done,
    marker_path,
    pause_point,
    read_json,
    remove_temp_files,
)
from .stages_map import MapContext, file_key, map_file
from .stages_reduce import DocumentsWriter, iter_survivors, resolve_versions
from .stages_tokenize import build_tokenizer, tokenize_to_shards
from .tokenizer import load_tokenizer, save_tokenizer, tokenizer_info

# ---- inputs ----------------------------------------------------------------------------------

def resolve_input_files(cfg: PrepConfig) -> tuple[list[Any], list[dict]]:
    """(input files in load order, files the source itself quarantined)."""
    from .sources import resolve_inputs

    quarantine: list[PrepError] = []
    params = inspect.signature(resolve_inputs).parameters
    if "quarantine" in params:
        inputs = resolve_inputs(cfg.source, cfg.source_cache_dir, quarantine=quarantine)
    else:
        inputs = resolve_inputs(cfg.source, cfg.source_cache_dir)
    inputs = sorted(inputs, key=lambda f: (f.order, str(f.path)))
    quarantined = [{"path": str(getattr(e, "path", "")), "reason": getattr(e, "reason", str(e))} for e in quarantine]
    return inputs, quarantined


# ---- stage (a): map ----------------------------------------------------------------------------

_CTX: MapContext | None = None


def _init_map_worker(ctx: MapContext) -> None:
    global _CTX
    _CTX = ctx


def _map_one(args: tuple[str, int, dict]) -> dict:
    assert _CTX is not None
    path, order, meta = args
    return map_file(_CTX, Path(path), order, meta)


def map_context(cfg: PrepConfig) -> MapContext:
    return MapContext(map_dir=cfg.out_dir / "work" / "map",
                      rejects_dir=cfg.out_dir / "rejects" if cfg.rejects else None,
                      clean_cfg=cfg.clean, filter_cfg=cfg.filter, jats_options=cfg.jats)


def run_map(cfg: PrepConfig, inputs: list[Any]) -> list[dict]:
    ctx = map_context(cfg)
    ctx.map_dir.mkdir(parents=True, exist_ok=True)
    if ctx.rejects_dir is not None:
        ctx.rejects_dir.mkdir(parents=True, exist_ok=True)
    mine = [f for k, f in enumerate(inputs) if k % cfg.task_count == cfg.task_index]
    jobs = [(str(f.path), f.order, dict(f.meta or {})) for f in mine]
    infos: list[dict] = []
    bar = tqdm(total=len(jobs), desc="parse+clean+filter", unit="file", disable=not cfg.progress)
    done = 0

    def collect(info: dict) -> None:
        nonlocal done
        infos.append(info)
        done += 1
        bar.update(1)
        bar.set_postfix(records=sum(i.get("counts", {}).get("parsed", 0) for i in infos), refresh=False)
        pause_point(f"map:{done}")

    if cfg.workers <= 1 or len(jobs) <= 1:
        _init_map_worker(ctx)
        for job in jobs:
            collect(_map_one(job))
    else:
        mpctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
        with mpctx.Pool(min(cfg.workers, len(jobs)), initializer=_init_map_worker, initargs=(ctx,)) as pool:
            for info in pool.imap_unordered(_map_one, jobs):
                collect(info)
    bar.close()
    return infos


def map_outputs(cfg: PrepConfig, inputs: list[Any]) -> tuple[list[tuple[int, Path]], list[dict], list[dict]]:
    """(map Parquet files in load order, input records for the manifest, quarantined files)."""
    map_dir = cfg.out_dir / "work" / "map"
    files, records, quarantined, missing = [], [], [], []
    for f in inputs:
        out = map_dir / f"{file_key(f.order, Path(f.path))}.parquet"
        if not is_done(out):
            missing.append(str(f.path))
            continue
        info = read_json(marker_path(out))
        records.append({"path": info["path"], "order": info["order"], "size": info["size"],
                        "sha256": info["sha256"], "records": info.get("counts", {}).get("parsed", 0),
                        "deletions": info.get("counts", {}).get("deletions", 0)})
        if "quarantined" in info:
            quarantined.append({"path": info["path"], "reason": info["quarantined"]})
        else:
            files.append((f.order, out))
    if missing:
        raise PrepError(f"{cfg.out_dir}: {len(missing)} input file(s) have no finished map output "
                        f"(first: {missing[0]}); run the missing `stage=map task.index=...` tasks, or stage=all")
    return files, records, quarantined


# ---- stage (b): merge --------------------------------------------------------------------------

def run_merge(cfg: PrepConfig, map_files: list[tuple[int, Path]]) -> dict:
    from .decontam import load_eval_sets

    info_path = cfg.out_dir / "work" / "merge.json"
    if is_done(info_path):
        return read_json(info_path)
    doc_dir = cfg.out_dir / "documents"
    if doc_dir.exists():
        shutil.rmtree(doc_dir)  # leftovers of a killed merge: redo it whole
    res = resolve_versions(map_files)
    evals = load_eval_sets(decontam_config(cfg))
    is_duplicate = make_dedup(cfg, map_files, res)
    writer = DocumentsWriter(doc_dir, cfg.documents.rows_per_file, cfg.documents.row_group_size,
                             cfg.documents.compression)
    dup_reasons: Counter = Counter()
    decontaminated: dict[str, list[str]] = {}
    per_split: Counter = Counter()
    survivors = sum(len(v) for v in res.winners.values())
    bar = tqdm(total=survivors, desc="dedup+decontam", unit="doc", disable=not cfg.progress)
    for doc in iter_survivors(map_files, res):
        bar.update(1)
        reason = is_duplicate(doc)
        if reason is not None:
            dup_reasons[reason] += 1
            continue
        hit = evals.match(doc)
        if hit is not None:  # "eval:<set name>"
            decontaminated.setdefault(hit.removeprefix("eval:"), []).append(doc.id)
            continue
        split = split_of(doc.id, cfg.split.val_fraction)
        per_split[split] += 1
        writer.add(doc, split)
    bar.close()
    parts = writer.close()
    counts = dict(res.counts)
    counts.update(duplicates=sum(dup_reasons.values()),
                  decontaminated=sum(len(v) for v in decontaminated.values()),
                  kept=sum(per_split.values()), train_documents=per_split["train"], val_documents=per_split["val"])
    info = {"counts": counts, "dropped": dict(sorted(res.dropped.items())),
            "duplicates": dict(sorted(dup_reasons.items())),
            "decontaminated": {k: sorted(v) for k, v in sorted(decontaminated.items())},
            "decontam_summary": _json_safe(evals.summary()), "documents": parts}
    atomic_write_json(info_path, info)
    mark_done(info_path)
    pause_point("merge")
    return info


def make_dedup(cfg: PrepConfig, map_files: list[tuple[int, Path]], res: Any) -> Callable[[Document], str | None]:
    """`doc -> duplicate reason | None` from data_prep.dedup's plan over all survivors.

    One sorted key file per map output, then a streaming merge: memory holds one file's keys and
    the dropped ids, not the corpus. The plan depends only on the documents, not their order.
    """
    from .dedup import KeyWriter, merge_key_files

    key_dir = cfg.out_dir / "work" / "dedup"
    if key_dir.exists():
        shutil.rmtree(key_dir)
    key_dir.mkdir(parents=True)
    paths = []
    for order, path in tqdm(map_files, desc="dedup keys", unit="file", disable=not cfg.progress):
        w = KeyWriter()
        for doc in iter_survivors([(order, path)], res):
            w.add(doc)
        paths.append(key_dir / f"{path.stem}.keys")
        w.write(paths[-1])
    plan = merge_key_files(paths, cfg.dedup)
    return plan.check


def _json_safe(x: Any) -> Any:
    import json

    return json.loads(json.dumps(x, default=str))


def decontam_config(cfg: PrepConfig) -> Any:
    """cfg.decontam, plus the demo PubMedQA set when the source is the demo corpus.

    The demo QA items are questions about demo abstracts (data_prep/demo_qa.py); generating them
    here (deterministically, into the cache beside the corpus) and adding them as an eval set is
    what makes `make demo` show decontamination at work.
    """
    import dataclasses

    from .decontam import DEFAULT_SOURCES, EvalSource

    dc = cfg.decontam
    if cfg.source.get("name") != "demo" or not dc.enabled:
        return dc
    from .demo_qa import QASplits, generate_demo_pubmedqa
    from .sources import demo

    qa_dir = cfg.source_cache_dir / "demo_pubmedqa"
    corpus = cfg.source_cache_dir / "demo"
    splits = QASplits()
    args = demo.marker_args(corpus)
    eligible = len(demo.plan_corpus(args["seed"], args["n_abstracts"], args["n_fulltext"]).qa_candidates)
    if eligible < splits.total:  # a small demo corpus (tests): the same proportions, fewer items
        f = eligible / splits.total
        splits = QASplits(train=int(splits.train * f), dev=int(splits.dev * f), test=int(splits.test * f))
    generate_demo_pubmedqa(qa_dir, corpus, splits=splits)
    sources = list(dc.sources) if dc.sources is not None else (
        [EvalSource(n, p, f) for n, (p, f) in DEFAULT_SOURCES.items()] if dc.eval_dir else [])
    if not any(s.name == "demo_pubmedqa" for s in sources):
        sources.append(EvalSource("demo_pubmedqa", str(qa_dir.resolve()), "pubmedqa"))
    return dataclasses.replace(dc, sources=tuple(sources))


# ---- stages (c) and (d): tokenizer, shards ----------------------------------------------------------

def run_tokenizer(cfg: PrepConfig, merge: dict):
    path = cfg.out_dir / "tokenizer" / "tokenizer.json"
    if is_done(path):
        return load_tokenizer(path), read_json(marker_path(path))["sha256"]
    t0 = time.time()
    tok = build_tokenizer(cfg.out_dir, merge["documents"], merge["counts"]["train_documents"], cfg.tokenizer,
                          cfg.progress)
    sha = save_tokenizer(tok, path)
    mark_done(path, {"sha256": sha, "seconds": round(time.time() - t0, 3)})
    return tok, sha


def run_shards(cfg: PrepConfig, merge: dict, tok) -> dict[str, list[dict]]:
    info_path = cfg.out_dir / "work" / "shards.json"
    if is_done(info_path):
        return read_json(info_path)
    shard_dir = cfg.out_dir / "shards"
    if shard_dir.exists():
        shutil.rmtree(shard_dir)
    total_docs = merge["counts"]["kept"]
    bar = tqdm(total=total_docs, desc="tokenize+write", unit="doc", disable=not cfg.progress)
    tokens = 0

    def on_batch(n_docs: int, n_tokens: int) -> None:
        nonlocal tokens
        tokens += n_tokens
        bar.update(n_docs)
        bar.set_postfix(tok_s=f"{tokens / max(1e-9, bar.format_dict['elapsed']):,.0f}", refresh=False)

    shards = tokenize_to_shards(cfg.out_dir, merge["documents"], tok, cfg.shards.max_tokens,
                                cfg.shards.batch_docs, cfg.shards.processes, on_batch=on_batch,
                                after_shard=lambda: pause_point("shard"))
    bar.close()
    info = {split: [s.to_dict() for s in lst] for split, lst in shards.items()}
    atomic_write_json(info_path, info)
    mark_done(info_path)
    return info


def doc_lengths(out_dir: Path, shards: dict[str, list[dict]]) -> np.ndarray:
    parts = []
    for lst in shards.values():
        for s in lst:
            ends = np.fromfile(out_dir / s["idx"], dtype=IDX_DTYPE).astype(np.int64)
            parts.append(np.diff(np.concatenate([[0], ends])))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


# ---- run ------------------------------------------------------------------------------------

def run(cfg: Any) -> dict | None:
    """Run the configured stage(s); return the manifest when the run got that far."""
    t0 = time.time()
    if not isinstance(cfg, PrepConfig):
        cfg = build_config(cfg)
    chash = config_hash(cfg.raw)
    claim_out_dir(cfg.out_dir, chash, cfg.overwrite)
    if cfg.task_count == 1:  # array tasks run side by side: one must not delete another's temp files
        remove_temp_files(cfg.out_dir)
    inputs, src_quarantined = resolve_input_files(cfg)
    if not inputs and not src_quarantined:
        raise PrepError(f"source {cfg.source.get('name')}: no input files found ({cfg.source})")
    if cfg.stage == "fetch":
        return None
    timings: dict[str, float] = {"inputs": round(time.time() - t0, 3)}

    def timed(name: str, fn, *args):
        t = time.time()
        out = fn(*args)
        timings[name] = round(time.time() - t, 3)  # ~0 when the stage was already done (resume)
        return out

    if cfg.stage in ("all", "map"):
        timed("map", run_map, cfg, inputs)
    if cfg.stage == "map":
        return None
    map_files, input_records, quarantined = map_outputs(cfg, inputs)
    pause_point("reduce")
    merge = timed("merge", run_merge, cfg, map_files)
    tok, tok_sha = timed("tokenizer", run_tokenizer, cfg, merge)
    shards = timed("shards", run_shards, cfg, merge, tok)
    vocab = tok.get_vocab_size()
    splits = {s: {"tokens": sum(x["tokens"] for x in lst), "documents": sum(x["documents"] for x in lst),
                  "shards": lst} for s, lst in shards.items()}
    counts = dict(merge["counts"])
    counts.update(input_files=len(inputs) + len(src_quarantined),
                  quarantined_files=len(quarantined) + len(src_quarantined),
                  parsed=sum(r["records"] for r in input_records),
                  train_tokens=splits["train"]["tokens"], val_tokens=splits["val"]["tokens"])
    manifest = build_manifest(
        config_hash=chash, config=hashed_config(cfg.raw), inputs=input_records,
        tokenizer=tokenizer_info(tok, tok_sha), dtype=dtype_name(token_dtype(vocab)), splits=splits,
        documents=merge["documents"], counts=dict(sorted(counts.items())), dropped=merge["dropped"],
        decontaminated=merge["decontaminated"], quarantined=src_quarantined + quarantined,
        decontam_summary=merge.get("decontam_summary"))
    manifest["duplicates"] = merge["duplicates"]
    lengths = doc_lengths(cfg.out_dir, shards)
    if cfg.summary.histogram:
        from .summary import length_histogram

        length_histogram(lengths, cfg.out_dir / "doc_lengths.png")
    write_manifest(cfg.out_dir, manifest)
    seconds = time.time() - t0
    atomic_write_json(cfg.out_dir / "summary.json", {
        "seconds": round(seconds, 3), "stage_seconds": timings, "counts": manifest["counts"], "dropped": manifest["dropped"],
        "median_doc_tokens": float(np.median(lengths)) if lengths.size else 0.0})
    if cfg.summary.print:
        from .summary import print_summary

        print_summary(manifest, seconds, cfg.out_dir)
    return manifest
