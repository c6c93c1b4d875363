"""Stages (c) and (d): train (or load) the tokenizer, then tokenize the documents into shards.

Documents are encoded in large batches, by tiktoken when the tokenizer is data_prep's own
byte-level BPE (same ids, faster: tokens/fast_encode.py; `shards.encoder`), else by
`Tokenizer.encode_batch`. By default (`shards.processes=0`) the batches are encoded in this process
on every core (tiktoken's threads or tokenizers' Rust threads; measured faster than processes:
benchmarks/bench_tokenize.py); with `shards.processes=N` they go, in order, to N processes (one
thread each). The main process writes the shards sequentially in document order either way, so the
bytes depend on neither the encoder nor the processes. Before trusting tiktoken, a run compares its
ids with `tokenizers`' on the first documents and falls back to `tokenizers` on any difference.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import multiprocessing as mp
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pyarrow.parquet as pq
from tokenizers import Tokenizer
from tqdm import tqdm

from common.atomic import atomic_write_json
from common.config import ConfigError
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
from data_prep.tokens.fast_encode import FastEncoder, cores, tiktoken_encoding
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

if TYPE_CHECKING:
    import tiktoken

SPLITS = ("train", "val")

log = logging.getLogger(__name__)


def training_texts(out_dir: Path, parts: list[dict], n_train: int, cfg: BpeTokenizerConfig) -> Iterator[str]:
    """A deterministic sample of train documents, spread over the whole corpus.

    A document is in the sample when a hash of its id (salted, so the sample is independent of
    the val split, which also hashes ids) falls under `sample_fraction`; the byte cap is a backstop
    should the size estimate behind that fraction fall short.
    """
    threshold = sample_fraction(out_dir, parts, n_train, cfg) * 2**64
    used = 0
    for batch in iter_documents(out_dir, parts, columns=["id", "text", "split"]):
        for doc_id, text, split in zip(batch["id"], batch["text"], batch["split"], strict=True):
            if split != "train":
                continue
            h = int.from_bytes(hashlib.sha256(b"tokenizer-sample:" + doc_id.encode()).digest()[:8], "big")
            if h >= threshold:
                continue
            used += len(text.encode("utf-8"))
            if used > cfg.max_train_bytes:
                return
            yield text


# The sample aims at this share of max_train_bytes, so that the cap (which would leave out the rest
# of the corpus, in document order: the newest PubMed files) does not cut it short.
SAMPLE_BYTES_TARGET = 0.9


def sample_fraction(out_dir: Path, parts: list[dict], n_train: int, cfg: BpeTokenizerConfig) -> float:
    """The share of train documents in the tokenizer's sample: at most max_train_docs of them and,
    by the text size in the Parquet footers (no data read), about 0.9 x max_train_bytes."""
    by_docs = cfg.max_train_docs / max(1, n_train)
    rows = sum(p["rows"] for p in parts)
    train_bytes = text_bytes(out_dir, parts) * n_train / max(1, rows)
    by_bytes = SAMPLE_BYTES_TARGET * cfg.max_train_bytes / max(1.0, train_bytes)
    return min(1.0, by_docs, by_bytes)


def text_bytes(out_dir: Path, parts: list[dict]) -> int:
    """Uncompressed size of the documents' text column (UTF-8 plus a few bytes a row), from the footers."""
    total = 0
    for part in parts:
        meta = pq.ParquetFile(Path(out_dir) / part["path"]).metadata
        col = meta.schema.names.index("text")
        total += sum(meta.row_group(i).column(col).total_uncompressed_size for i in range(meta.num_row_groups))
    return total


def build_tokenizer(out_dir: Path, parts: list[dict], n_train: int, cfg: TokenizerConfig,
                    progress: bool) -> Tokenizer:
    if isinstance(cfg, PretrainedTokenizerConfig):
        return load_tokenizer(cfg.path)
    assert isinstance(cfg, BpeTokenizerConfig)
    n = round(sample_fraction(out_dir, parts, n_train, cfg) * n_train)  # expected, for the progress bar
    return train_bpe(training_texts(out_dir, parts, n_train, cfg), cfg.vocab_size, cfg.min_frequency,
                     length=n, show_progress=progress)


# ---- encoding --------------------------------------------------------------------------------

# Documents of the first batch that tiktoken's ids are checked on against tokenizers' (~0.2 s):
# FastEncoder's checks of the tokenizer are necessary, not sufficient.
CHECK_DOCS = 1024

# In an encoding worker process only: the tokenizer its pool was started with (and its tiktoken
# encoder, when the run uses one), keyed by the sha256 of its JSON (a value, not an object id), so a
# task can never be encoded with another tokenizer.
_WORKER_TOKENIZERS: dict[str, tuple[Tokenizer, FastEncoder | None]] = {}


def _init_worker(tokenizer_json: str, key: str, use_tiktoken: bool) -> None:
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one Rust thread per process: N processes = N cores
    tok = Tokenizer.from_str(tokenizer_json)
    _WORKER_TOKENIZERS[key] = (tok, FastEncoder.build(tok, threads=1)[0] if use_tiktoken else None)


def choose_encoder(tok: Tokenizer, encoder: str) -> tuple[tiktoken.Encoding | None, str]:
    """(the tiktoken Encoding to use, or None for tokenizers; why) for shards.encoder = auto |
    tiktoken | tokenizers; ConfigError naming the key when `tiktoken` cannot be used."""
    encoder = getattr(encoder, "value", encoder)
    if encoder == "tokenizers":
        return None, "shards.encoder=tokenizers"
    encoding, reason = tiktoken_encoding(tok)
    if encoding is not None:
        return encoding, f"shards.encoder={encoder} and the tokenizer is data_prep's byte-level BPE, same ids"
    if encoder == "tiktoken":
        raise ConfigError("shards.encoder", f"tiktoken cannot encode for this tokenizer: {reason}; use "
                                            "shards.encoder=auto or tokenizers")
    return None, f"shards.encoder=auto and tiktoken cannot stand in: {reason}"


def encode_texts(tok: Tokenizer, texts: list[str], dtype: np.dtype,
                 fast: FastEncoder | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(all ids concatenated, length of each document), without EOS; by `fast` when given (same ids)."""
    if fast is not None:
        id_lists = fast.encode(texts)
    else:
        id_lists = [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
    arrays = [np.array(ids, dtype=dtype) for ids in id_lists]
    lengths = np.fromiter((a.size for a in arrays), dtype=np.int64, count=len(arrays))
    flat = np.concatenate(arrays) if arrays else np.zeros(0, dtype=dtype)
    return flat, lengths


def first_difference(tok: Tokenizer, fast: FastEncoder, texts: list[str]) -> int | None:
    """Index of the first text whose tiktoken ids differ from tokenizers', None when all agree."""
    theirs = tok.encode_batch(texts, add_special_tokens=False)
    return next((i for i, (a, b) in enumerate(zip(fast.encode(texts), theirs, strict=True)) if a != b.ids), None)


def _encode_row_group(args: tuple[str, str, int, str, bool]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A worker's job with processes > 0: one row group of a documents part, read here (the main
    process only receives arrays and writes them), as (ids, lengths, in the val split)."""
    key, path, group, dtype, use_tiktoken = args
    tok, fast = _WORKER_TOKENIZERS[key]
    t = pq.ParquetFile(path).read_row_group(group, columns=["text", "split"])
    flat, lengths = encode_texts(tok, t["text"].to_pylist(), np.dtype(dtype), fast if use_tiktoken else None)
    return flat, lengths, np.asarray(t["split"].to_pylist()) == "val"


def _difference_in_worker(args: tuple[str, list[str]]) -> int | None:
    key, texts = args
    tok, fast = _WORKER_TOKENIZERS[key]
    assert fast is not None
    return first_difference(tok, fast, texts)


class Batch(NamedTuple):
    """One batch of documents, in document order."""

    ids: list[str]
    texts: list[str]
    splits: list[str]


def tokenize_to_shards(out_dir: Path, parts: list[dict], tok: Tokenizer, max_tokens: int, batch_docs: int,
                       processes: int, on_batch: Callable[[int, int], None] | None = None,
                       after_shard: Callable[[], None] | None = None,
                       shard_dir: Path | None = None, encoder: str = "auto") -> dict[str, list[ShardInfo]]:
    """Write `<shard_dir>/{train,val}-NNNNN.{bin,idx}` (default `shards/`; an appended generation
    writes `shards/gen-<g>/`) from the documents, in document order. `encoder`: shards.encoder."""
    encoding, why = choose_encoder(tok, encoder)
    log.info("shards: encoding with %s: %s", "tokenizers" if encoding is None else "tiktoken", why)
    vocab_size = tok.get_vocab_size()
    shard_dir = Path(shard_dir) if shard_dir is not None else Path(out_dir) / "shards"
    writers = {s: ShardWriter(shard_dir, s, vocab_size, EOS_ID, max_tokens, rel_to=out_dir) for s in SPLITS}
    dtype = writers["train"].dtype

    def batches() -> Iterator[Batch]:
        for b in iter_documents(out_dir, parts, columns=["id", "text", "split"], batch_size=batch_docs):
            yield Batch(b["id"], b["text"], b["split"])

    def write(splits: list[str] | np.ndarray, flat: np.ndarray, lengths: np.ndarray) -> None:
        """`splits`: each document's split, or (from a worker) whether it is in val."""
        n_before = {s: len(w.shards) for s, w in writers.items()}
        split_arr = np.where(splits, "val", "train") if isinstance(splits, np.ndarray) and splits.dtype == bool \
            else np.asarray(splits)
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
        groups = [(str(Path(out_dir) / p["path"]), g) for p in parts
                  for g in range(pq.ParquetFile(Path(out_dir) / p["path"]).num_row_groups)]
        _encode_all(batches(), write, tok, dtype, processes, encoding, groups)
        return {s: w.close() for s, w in writers.items()}
    except BaseException:
        for w in writers.values():
            w.abort()  # no temp file of an unfinished shard outlives the error
        raise


def _agrees(first: Batch, difference: int | None) -> bool:
    """The safety net's verdict on the first batch; a warning naming the first differing document."""
    if difference is None:
        return True
    log.warning("shards: tiktoken and tokenizers give different ids for document %s (document %d of the run): "
                "encoding the whole run with tokenizers (shards.encoder=tokenizers skips this check)",
                first.ids[difference], difference)
    return False


def _encode_all(batches: Iterator[Batch], write: Callable, tok: Tokenizer, dtype: np.dtype, processes: int,
                encoding: tiktoken.Encoding | None = None, groups: list[tuple[str, int]] | None = None) -> None:
    """Encode the batches in order and `write` each, with tiktoken when `encoding` is given. With
    processes > 0 the `groups` (documents part, row group) are read and encoded by the workers (each
    builds its encoders from the tokenizer), and this process only writes their arrays in order:
    nothing per document runs here, which is what lets the stage scale with cores."""
    first = next(batches, None)
    if first is None:
        return
    batches = itertools.chain([first], batches)
    if processes <= 0:
        fast = FastEncoder(tok, encoding, threads=cores()) if encoding is not None else None
        try:
            if fast is not None and not _agrees(first, first_difference(tok, fast, first.texts[:CHECK_DOCS])):
                fast.close()
                fast = None
            for b in batches:
                write(b.splits, *encode_texts(tok, b.texts, dtype, fast))
        finally:
            if fast is not None:
                fast.close()
    else:
        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
        tok_json = tok.to_str()
        key = hashlib.sha256(tok_json.encode("utf-8")).hexdigest()
        use_tiktoken = encoding is not None
        with ctx.Pool(processes, initializer=_init_worker, initargs=(tok_json, key, use_tiktoken)) as pool:
            # The safety net runs in a worker, which holds the run's encoders already.
            if use_tiktoken:
                use_tiktoken = _agrees(first, pool.apply(_difference_in_worker, ((key, first.texts[:CHECK_DOCS]),)))
            del first, batches  # the workers read the documents themselves
            jobs = [(key, path, g, dtype.str, use_tiktoken) for path, g in groups or ()]
            # A job is a row group (documents.row_group_size documents): results wait for the writes
            # only while an earlier job is still running, a few row groups' arrays at most.
            for flat, lengths, val in pool.imap(_encode_row_group, jobs):
                write(val, flat, lengths)  # imap keeps order


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


def shard_processes(cfg: PrepConfig) -> int:
    """shards.processes, with -1 (the default) resolved: the run's `workers` processes when it has
    several, else threads in this process."""
    p = cfg.shards.processes
    return p if p >= 0 else (cfg.workers if cfg.workers > 1 else 0)


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
                                cfg.shards.batch_docs, shard_processes(cfg), on_batch=on_batch,
                                after_shard=lambda: pause_point("shard"), shard_dir=shard_dir,
                                encoder=cfg.shards.encoder)
    bar.close()
    info = {split: [s.to_dict() for s in lst] for split, lst in shards.items()}
    atomic_write_json(info_path, info)
    mark_done(info_path, upstream)
    return info
