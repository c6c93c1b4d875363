"""Perplexity and bits per byte on held-out token shards.

The split is cut into windows of `block_size + 1` tokens, consecutive and non-overlapping, so
every token after a window's first is predicted exactly once with up to `block_size` tokens of
context. bits_per_byte = (total NLL in nats) / ln 2 / (UTF-8 bytes of the decoded predicted
tokens): it does not depend on the tokenizer, so models with different vocabularies compare.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from data_prep.errors import PrepError
from data_prep.tokens.shards import TokenShards
from eval.errors import DataFileError
from eval.modeling import Loaded, logits_of
from tasks.pretrain import perplexity_metrics


@dataclass(frozen=True)
class PerplexityResult:
    perplexity: float
    bits_per_byte: float
    nll_per_token: float
    tokens: int
    bytes: int
    windows: int

    def metrics(self) -> dict:
        return {"perplexity": self.perplexity, "bits_per_byte": self.bits_per_byte, "nll_per_token": self.nll_per_token}

    @classmethod
    def of(cls, nll: float, tokens: int, nbytes: int, windows: int) -> PerplexityResult:
        return cls(**perplexity_metrics(nll, tokens, nbytes), tokens=tokens, bytes=nbytes, windows=windows)

    def counts(self) -> dict:
        return {"tokens": self.tokens, "bytes": self.bytes, "windows": self.windows}


def open_shards(manifest: Path, split: str, generations: list[int] | None = None) -> TokenShards:
    """The live documents of `split` (retired ones are never scored), of `generations` only if given."""
    try:
        return TokenShards.from_manifest(manifest, split=split, generations=generations)
    except PrepError as e:
        raise DataFileError(manifest, f"{e}") from e


@torch.no_grad()
def evaluate(loaded: Loaded, shards, block_size: int, batch_size: int, max_windows: int | None = None,
             progress: bool = True) -> PerplexityResult:
    n_windows = (shards.num_tokens - 1) // block_size
    if max_windows is not None:
        n_windows = min(n_windows, max_windows)
    if n_windows < 1:
        raise DataFileError("shards", f"{shards.num_tokens} tokens: fewer than one window of {block_size + 1}; "
                                      "use a smaller task.block_size")
    nll, tokens, nbytes = 0.0, 0, 0
    for first in tqdm(range(0, n_windows, batch_size), desc="perplexity", unit="batch", disable=not progress):
        rows = [shards.window(w * block_size, block_size + 1) for w in range(first, min(first + batch_size, n_windows))]
        batch = torch.from_numpy(np.stack(rows)).to(device=loaded.device, dtype=torch.long)  # (B, T+1)
        logits = logits_of(loaded.model, batch[:, :-1])  # (B, T, V)
        targets = batch[:, 1:]  # (B, T)
        nll += float(F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), reduction="sum"))
        tokens += targets.numel()
        nbytes += sum(len(loaded.codec.decode(r[1:].tolist()).encode("utf-8")) for r in rows)
    return PerplexityResult.of(nll, tokens, nbytes, n_windows)


def evaluate_generations(loaded: Loaded, manifest: Path, split: str, generations: list[int], block_size: int,
                         batch_size: int, max_windows: int | None = None, progress: bool = True) -> dict[str, dict]:
    """results.json's `by_generation`: each generation's live documents of `split` scored on their
    own (windows restart at the generation's first token), so old and new documents compare. With
    the checkpoint's `data_generations` record (tokens it trained on per generation, train/), each
    entry also has `trained_tokens` (0 for a generation it never trained on); without one, none."""
    record = loaded.info.get("data_generations")
    out: dict[str, dict] = {}
    for g in generations:
        view = open_shards(manifest, split, [g])
        entry: dict = {"documents": view.num_documents, "retired_documents": view.retired_documents}
        if isinstance(record, dict):
            entry["trained_tokens"] = int(record.get(str(g), 0))
        if view.num_documents == 0:  # a small update may put no document in the val split
            entry["skipped"] = f"no live documents in the {split} split"
        elif view.num_tokens - 1 < block_size:
            entry["skipped"] = f"{view.num_tokens} tokens: fewer than one window of {block_size + 1}"
        else:
            r = evaluate(loaded, view, block_size, batch_size, max_windows, progress)
            entry.update(r.metrics(), **r.counts())
        out[str(g)] = entry
    return out


# -- texts with spans (`task.texts=<file.jsonl[.gz]>`) --------------------------------------------------
# Each text is scored as a document of the training data is seen: after an EOS, its tokens are cut
# into consecutive windows of `block_size` predicted tokens (the window's first input is the token
# before them, the EOS for the first window), so every token is predicted once with up to
# `block_size` tokens of context from the same text; the context restarts at each window.
#
# Bits on bytes: a token's loss (nats / ln 2) is shared out equally over the UTF-8 bytes of the text
# characters the tokenizer maps it to (its character offsets). A character split over several
# byte-level tokens receives a share from each; a token mapped to no character (the space a
# byte-level BPE adds before the text) gives its loss to the first byte of the next token's
# characters. Every bit lands on exactly one byte of the text, so bits_per_byte = total bits / text
# bytes, and span metrics (the sum over the bytes of merged spans / their byte count) over spans
# covering every whole text equal bits_per_byte.


def position_buckets(block_size: int) -> list[int]:
    """Bucket edges over a token's position in its window (0 = predicted from one token of
    context): [0, 1), [1, 2), [2, 4), ... doubling up to block_size."""
    edges, e = [0], 1
    while e < block_size:
        edges.append(e)
        e *= 2
    return edges + [block_size]


def _offsets(loaded: Loaded, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    tok = loaded.codec.tok
    enc = tok.encode(text, add_special_tokens=False)
    if not hasattr(enc, "offsets"):
        raise DataFileError("tokenizer", "has no character offsets; text mode needs a `tokenizers` tokenizer")
    return list(enc.ids), [tuple(o) for o in enc.offsets]


def byte_bits(text: str, offsets: list[tuple[int, int]], bits: np.ndarray) -> np.ndarray:
    """Per-byte bits of `text` (UTF-8) from per-token bits and the tokens' character offsets."""
    char_bytes = np.fromiter((len(c.encode("utf-8")) for c in text), dtype=np.int64, count=len(text))
    start = np.concatenate([[0], np.cumsum(char_bytes)])  # byte offset of each character (+ the end)
    out = np.zeros(int(start[-1]), dtype=np.float64)
    carry = 0.0
    for (s, e), b in zip(offsets, bits, strict=True):
        lo, hi = int(start[s]), int(start[e])
        if hi <= lo:  # a token mapped to no character: its bits go with the next token's first byte
            carry += float(b)
            continue
        out[lo:hi] += float(b) / (hi - lo)
        out[lo] += carry
        carry = 0.0
    if carry and out.size:
        out[-1] += carry
    return out


def char_to_byte(text: str) -> np.ndarray:
    """byte offset of character i (index len(text) = the text's byte length)."""
    return np.concatenate([[0], np.cumsum([len(c.encode("utf-8")) for c in text])]).astype(np.int64)


def _span_sum(per_byte: np.ndarray, c2b: np.ndarray, spans) -> tuple[float, int]:
    bits, n = 0.0, 0
    for s, e in spans:
        lo, hi = int(c2b[s]), int(c2b[e])
        bits += float(per_byte[lo:hi].sum())
        n += hi - lo
    return bits, n


@dataclass
class _Acc:
    bits: float = 0.0
    bytes: int = 0
    texts: int = 0

    def add(self, bits: float, n: int) -> None:
        self.bits += bits
        self.bytes += n

    def bpb(self) -> float | None:
        return self.bits / self.bytes if self.bytes else None


@torch.no_grad()
def token_losses(loaded: Loaded, seqs: list[list[int]], block_size: int, batch_size: int,
                 progress: bool = True) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Per-token NLL (nats) of each sequence's tokens after its first, in windows of block_size
    predicted tokens; also the summed NLL and count per position-in-window."""
    windows = [(i, a) for i, s in enumerate(seqs) for a in range(0, len(s) - 1, block_size)]
    out = [np.zeros(max(len(s) - 1, 0)) for s in seqs]
    pos_nll, pos_n = np.zeros(block_size), np.zeros(block_size, dtype=np.int64)
    for first in tqdm(range(0, len(windows), batch_size), desc="perplexity (texts)", unit="batch", disable=not progress):
        chunk = windows[first: first + batch_size]
        rows = [seqs[i][a: a + block_size + 1] for i, a in chunk]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), loaded.codec.eos_id, dtype=torch.long)
        for k, r in enumerate(rows):  # right padding: a causal model's earlier positions never see it
            ids[k, : len(r)] = torch.tensor(r)
        ids = ids.to(loaded.device)
        logits = logits_of(loaded.model, ids[:, :-1])  # (B, T, V)
        nll = F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none").cpu().double().numpy()  # (B, T)
        for k, ((i, a), r) in enumerate(zip(chunk, rows, strict=True)):
            n = len(r) - 1
            out[i][a: a + n] = nll[k, :n]
            pos_nll[:n] += nll[k, :n]
            pos_n[:n] += 1
    return out, pos_nll, pos_n


def evaluate_texts(loaded: Loaded, items, block_size: int, batch_size: int, word_counts: dict[str, int] | None = None,
                   rare_max_count: int = 5, progress: bool = True) -> dict:
    """results.json's metrics/counts/extra for `tasks.pretrain.TextItem`s (see the comment above)."""
    from tasks.pretrain import NUMERIC_PATTERNS, merge, numeric_spans_by_kind, rare_word_spans

    encoded = [_offsets(loaded, it.text) for it in items]
    seqs = [[loaded.codec.eos_id, *ids] for ids, _ in encoded]
    losses, pos_nll, pos_n = token_losses(loaded, seqs, block_size, batch_size, progress)
    total, given = _Acc(), _Acc()
    rare = _Acc() if word_counts is not None else None
    numeric = {name: _Acc() for name in ("all", *NUMERIC_PATTERNS)}
    nll, tokens = 0.0, 0
    for it, (_, offsets), loss in zip(items, encoded, losses, strict=True):
        per_byte = byte_bits(it.text, offsets, loss / np.log(2))
        c2b = char_to_byte(it.text)
        total.add(float(per_byte.sum()), per_byte.size)
        nll += float(loss.sum())
        tokens += loss.size
        if it.spans is not None:
            given.add(*_span_sum(per_byte, c2b, merge(it.spans)))
            given.texts += 1
        if rare is not None:
            rare.add(*_span_sum(per_byte, c2b, merge(rare_word_spans(it.text, word_counts, rare_max_count))))
        kinds = numeric_spans_by_kind(it.text)
        numeric["all"].add(*_span_sum(per_byte, c2b, merge(s for v in kinds.values() for s in v)))
        for name, spans in kinds.items():
            numeric[name].add(*_span_sum(per_byte, c2b, spans))
    metrics = {**perplexity_metrics(nll, tokens, total.bytes), "bits_per_byte": total.bpb()}
    counts = {"texts": len(items), "tokens": tokens, "bytes": total.bytes}
    if given.texts:
        metrics["span_bits_per_byte"] = given.bpb()
        counts.update(span_bytes=given.bytes, texts_with_spans=given.texts)
    if rare is not None:
        metrics["rare_word_bits_per_byte"] = rare.bpb()
        counts["rare_word_bytes"] = rare.bytes
    metrics["numeric_bits_per_byte"] = numeric["all"].bpb()
    counts["numeric_bytes"] = numeric["all"].bytes
    edges = position_buckets(block_size)
    by_pos = []
    for lo, hi in zip(edges, edges[1:], strict=False):
        n = int(pos_n[lo:hi].sum())
        by_pos.append({"positions": [lo, hi], "tokens": n, "nll_per_token": float(pos_nll[lo:hi].sum()) / n if n else None})
    extra = {"numeric_by_kind": {k: {"bits_per_byte": v.bpb(), "bytes": v.bytes} for k, v in numeric.items() if k != "all"},
             "loss_by_position": by_pos, "rare_max_count": rare_max_count if rare is not None else None}
    # a metric over no bytes (no rare word, no numeric expression) is left out rather than null
    return {"metrics": {k: v for k, v in metrics.items() if v is not None}, "counts": counts, "extra": extra}
