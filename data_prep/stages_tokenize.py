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
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from .shards import ShardInfo, ShardWriter
from .stages_reduce import iter_documents
from .tokenizer import EOS_ID, TokenizerConfig, load_tokenizer, train_bpe

SPLITS = ("train", "val")


def training_texts(out_dir: Path, parts: list[dict], n_train: int, cfg: TokenizerConfig) -> Iterator[str]:
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
    if cfg.kind == "pretrained":
        return load_tokenizer(cfg.path)
    n = min(n_train, cfg.max_train_docs)
    return train_bpe(training_texts(out_dir, parts, n_train, cfg), cfg.vocab_size, cfg.min_frequency,
                     length=n, show_progress=progress)


# ---- encoding --------------------------------------------------------------------------------

_WORKER_TOKENIZER: Tokenizer | None = None


def _init_worker(tokenizer_json: str) -> None:
    global _WORKER_TOKENIZER
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one Rust thread per process: N processes = N cores
    _WORKER_TOKENIZER = Tokenizer.from_str(tokenizer_json)


def encode_texts(tok: Tokenizer, texts: list[str], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """(all ids concatenated, length of each document), without EOS."""
    encs = tok.encode_batch(texts, add_special_tokens=False)
    arrays = [np.array(e.ids, dtype=dtype) for e in encs]
    lengths = np.fromiter((a.size for a in arrays), dtype=np.int64, count=len(arrays))
    flat = np.concatenate(arrays) if arrays else np.zeros(0, dtype=dtype)
    return flat, lengths


def _encode_in_worker(args: tuple[list[str], str]) -> tuple[np.ndarray, np.ndarray]:
    texts, dtype = args
    assert _WORKER_TOKENIZER is not None
    return encode_texts(_WORKER_TOKENIZER, texts, np.dtype(dtype))


def tokenize_to_shards(out_dir: Path, parts: list[dict], tok: Tokenizer, max_tokens: int, batch_docs: int,
                       processes: int, on_batch: Callable[[int, int], None] | None = None,
                       after_shard: Callable[[], None] | None = None) -> dict[str, list[ShardInfo]]:
    """Write `shards/{train,val}-NNNNN.{bin,idx}` from the documents, in document order."""
    vocab_size = tok.get_vocab_size()
    shard_dir = Path(out_dir) / "shards"
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

    if processes <= 0:
        for texts, splits in batches():
            flat, lengths = encode_texts(tok, texts, dtype)
            write(splits, flat, lengths)
    else:
        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
        with ctx.Pool(processes, initializer=_init_worker, initargs=(tok.to_str(),)) as pool:
            # Pool.imap would read the whole corpus ahead; a bounded window keeps memory flat.
            window: list[tuple[list[str], list[str]]] = []
            source = batches()
            while True:
                window = list(itertools.islice(source, 4 * processes))
                if not window:
                    break
                results = pool.imap(_encode_in_worker, [(texts, dtype.str) for texts, _ in window])
                for (_, splits), (flat, lengths) in zip(window, results, strict=True):  # imap keeps order
                    write(splits, flat, lengths)
    return {s: w.close() for s, w in writers.items()}
