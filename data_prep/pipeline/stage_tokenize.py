"""Stages (c) and (d): train (or load) the tokenizer, then tokenize the documents into shards.

Tokenization runs `Tokenizer.encode_batch` on large batches. By default (`shards.processes=0`)
the batches are encoded in this process, where `tokenizers` already spreads each batch over every
core with Rust threads (measured faster than processes: benchmarks/bench_tokenize.py); with
`shards.processes=N` they go, in order, to N processes (one Rust thread each). The main process
writes the shards sequentially in document order either way, so the bytes do not depend on it.
"""

from __future__ import annotations

import hashlib
import itertools
import multiprocessing as mp
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer
from tqdm import tqdm

from common.atomic import atomic_write_json
from data_prep.config import PrepConfig
from data_prep.pipeline.generations import gen_name, gen_work_dir
from data_prep.pipeline.manifest import drop_manifest
from data_prep.pipeline.markers import (
    mark_done,
    marker_path,
    pause_point,
    read_json,
    records_sha256,
    sha256_file,
)
from data_prep.pipeline.stage_merge import iter_documents
from data_prep.tokens.shards import ShardInfo, ShardWriter
from data_prep.tokens.tokenizer import (
    EOS_ID,
    BpeTokenizerConfig,
    PretrainedTokenizerConfig,
    TokenizerConfig,
    load_tokenizer,
    save_tokenizer,
    train_bpe,
)

SPLITS = ("train", "val")


def training_texts(out_dir: Path, parts: list[dict], n_train: int, cfg: BpeTokenizerConfig) -> Iterator[str]:
    """A deterministic sample of train documents, spread over the whole corpus.

    A document is in the sample when a hash of its id (salted, so the sample is independent of
    the val split, which also hashes ids) falls under max_train_docs / n_train; the byte cap stops
    early on corpora of unusually long documents.
    """
    fraction = min(1.0, cfg.max_train_docs / max(1, n_train))
    threshold = fraction * 2**64
    used = 0
    for batch in iter_documents(out_dir, parts, columns=["id", "text", "split"]):
        for doc_id, text, split in zip(batch["id"], batch["text"], batch["split"], strict=True):
            if split != "train":
                continue
            h = int.from_bytes(hashlib.sha256(b"tokenizer-sample:" + doc_id.encode()).digest()[:8], "big")
            if h >= threshold:
                continue
            used += len(text)
            if used > cfg.max_train_bytes:
                return
            yield text


def build_tokenizer(out_dir: Path, parts: list[dict], n_train: int, cfg: TokenizerConfig,
                    progress: bool) -> Tokenizer:
    if isinstance(cfg, PretrainedTokenizerConfig):
        return load_tokenizer(cfg.path)
    assert isinstance(cfg, BpeTokenizerConfig)
    n = min(n_train, cfg.max_train_docs)
    return train_bpe(training_texts(out_dir, parts, n_train, cfg), cfg.vocab_size, cfg.min_frequency,
                     length=n, show_progress=progress)


# ---- encoding --------------------------------------------------------------------------------

# In an encoding worker process only: the tokenizer its pool was started with, keyed by the sha256
# of its JSON (a value, not an object id), so a task can never be encoded with another tokenizer.
_WORKER_TOKENIZERS: dict[str, Tokenizer] = {}


def _init_worker(tokenizer_json: str, key: str) -> None:
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one Rust thread per process: N processes = N cores
    _WORKER_TOKENIZERS[key] = Tokenizer.from_str(tokenizer_json)


def encode_texts(tok: Tokenizer, texts: list[str], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """(all ids concatenated, length of each document), without EOS."""
    encs = tok.encode_batch(texts, add_special_tokens=False)
    arrays = [np.array(e.ids, dtype=dtype) for e in encs]
    lengths = np.fromiter((a.size for a in arrays), dtype=np.int64, count=len(arrays))
    flat = np.concatenate(arrays) if arrays else np.zeros(0, dtype=dtype)
    return flat, lengths


def _encode_in_worker(args: tuple[str, list[str], str]) -> tuple[np.ndarray, np.ndarray]:
    key, texts, dtype = args
    return encode_texts(_WORKER_TOKENIZERS[key], texts, np.dtype(dtype))


def tokenize_to_shards(out_dir: Path, parts: list[dict], tok: Tokenizer, max_tokens: int, batch_docs: int,
                       processes: int, on_batch: Callable[[int, int], None] | None = None,
                       after_shard: Callable[[], None] | None = None,
                       shard_dir: Path | None = None) -> dict[str, list[ShardInfo]]:
    """Write `<shard_dir>/{train,val}-NNNNN.{bin,idx}` (default `shards/`; an appended generation
    writes `shards/gen-<g>/`) from the documents, in document order."""
    vocab_size = tok.get_vocab_size()
    shard_dir = Path(shard_dir) if shard_dir is not None else Path(out_dir) / "shards"
    writers = {s: ShardWriter(shard_dir, s, vocab_size, EOS_ID, max_tokens, rel_to=out_dir) for s in SPLITS}
    dtype = writers["train"].dtype

    def batches() -> Iterator[tuple[list[str], list[str]]]:
        for b in iter_documents(out_dir, parts, columns=["text", "split"], batch_size=batch_docs):
            yield b["text"], b["split"]

    def write(splits: list[str], flat: np.ndarray, lengths: np.ndarray) -> None:
        n_before = {s: len(w.shards) for s, w in writers.items()}
        split_arr = np.asarray(splits)
        for s, w in writers.items():
            sel = split_arr == s
            if sel.all():
                w.add_batch(flat, lengths)
            elif sel.any():
                w.add_batch(flat[np.repeat(sel, lengths)], lengths[sel])
        if after_shard is not None and any(len(w.shards) > n_before[s] for s, w in writers.items()):
            after_shard()
        if on_batch is not None:
            on_batch(len(splits), int(lengths.sum()) + len(splits))

    try:
        _encode_all(batches(), write, tok, dtype, processes)
        return {s: w.close() for s, w in writers.items()}
    except BaseException:
        for w in writers.values():
            w.abort()  # no temp file of an unfinished shard outlives the error
        raise


def _encode_all(batches: Iterator[tuple[list[str], list[str]]], write: Callable, tok: Tokenizer, dtype: np.dtype,
                processes: int) -> None:
    """Encode the batches in order (here, or in `processes` worker processes) and `write` each."""
    if processes <= 0:
        for texts, splits in batches:
            flat, lengths = encode_texts(tok, texts, dtype)
            write(splits, flat, lengths)
    else:
        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
        tok_json = tok.to_str()
        key = hashlib.sha256(tok_json.encode("utf-8")).hexdigest()
        with ctx.Pool(processes, initializer=_init_worker, initargs=(tok_json, key)) as pool:
            # Pool.imap would read the whole corpus ahead; a bounded window keeps memory flat.
            window: list[tuple[list[str], list[str]]] = []
            source = batches
            while True:
                window = list(itertools.islice(source, 4 * processes))
                if not window:
                    break
                results = pool.imap(_encode_in_worker, [(key, texts, dtype.str) for texts, _ in window])
                for (_, splits), (flat, lengths) in zip(window, results, strict=True):  # imap keeps order
                    write(splits, flat, lengths)


# ---- the stages ----------------------------------------------------------------------------------


def _current(marker: Path, upstream: dict) -> bool:
    """Whether a stage's marker exists and records exactly these upstream outputs."""
    if not marker.exists():
        return False
    info = read_json(marker)
    return all(info.get(k) == v for k, v in upstream.items())


def run_tokenizer(cfg: PrepConfig, merge: dict) -> tuple[Tokenizer, str]:
    """Stage (c): train (or load) the tokenizer unless its marker records the same documents (and,
    for a pretrained one, the same source file); returns (tokenizer, sha256)."""
    path = cfg.out_path / "tokenizer" / "tokenizer.json"
    upstream = {"documents_sha256": records_sha256(merge["documents"]),
                "source_sha256": sha256_file(Path(cfg.tokenizer.path))
                if isinstance(cfg.tokenizer, PretrainedTokenizerConfig) else None}
    if _current(marker_path(path), upstream):
        return load_tokenizer(path), read_json(marker_path(path))["sha256"]
    marker_path(path).unlink(missing_ok=True)
    drop_manifest(cfg.out_path)
    t0 = time.time()
    tok = build_tokenizer(cfg.out_path, merge["documents"], merge["counts"]["train_documents"], cfg.tokenizer,
                          cfg.progress)
    sha = save_tokenizer(tok, path)
    pause_point("tokenizer")  # tokenizer.json in place, its marker not
    mark_done(path, {"sha256": sha, "seconds": round(time.time() - t0, 3), **upstream})
    return tok, sha


def run_shards(cfg: PrepConfig, merge: dict, tok: Tokenizer, tok_sha: str, generation: int = 1) -> dict[str, list[dict]]:
    """Stage (d): tokenize the documents into shards unless the marker records the same documents
    and tokenizer; shard records by split. An appended generation g writes `shards/gen-<g>/` only
    (pipeline/generations.py) and leaves the manifest of the previous generations in place."""
    info_path = gen_work_dir(cfg.out_path, generation) / "shards.json"
    upstream = {"documents_sha256": records_sha256(merge["documents"]), "tokenizer_sha256": tok_sha}
    if _current(marker_path(info_path), upstream):
        return read_json(info_path)
    marker_path(info_path).unlink(missing_ok=True)
    shard_dir = cfg.out_path / "shards"
    if generation == 1:
        drop_manifest(cfg.out_path)
    else:
        shard_dir = shard_dir / gen_name(generation)
    if shard_dir.exists():
        shutil.rmtree(shard_dir)
    bar = tqdm(total=merge["counts"]["kept"], desc="tokenize+write", unit="doc", disable=not cfg.progress)
    tokens = 0

    def on_batch(n_docs: int, n_tokens: int) -> None:
        nonlocal tokens
        tokens += n_tokens
        bar.update(n_docs)
        bar.set_postfix(tok_s=f"{tokens / max(1e-9, bar.format_dict['elapsed']):,.0f}", refresh=False)

    shards = tokenize_to_shards(cfg.out_path, merge["documents"], tok, cfg.shards.max_tokens,
                                cfg.shards.batch_docs, cfg.shards.processes, on_batch=on_batch,
                                after_shard=lambda: pause_point("shard"), shard_dir=shard_dir)
    bar.close()
    info = {split: [s.to_dict() for s in lst] for split, lst in shards.items()}
    atomic_write_json(info_path, info)
    mark_done(info_path, upstream)
    return info
