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


def open_shards(manifest: Path, split: str) -> TokenShards:
    try:
        return TokenShards.from_manifest(manifest, split=split)
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
