"""Sampling from the decoder: greedy / temperature / top-k / top-p, batched, stops at EOS.

Batching uses left padding: rows are right-aligned, each row's positions start at its first real
token and pad keys are masked, so a row generates the same tokens alone or in a batch. With
`use_cache` the keys/values live in `model.kv_cache` (a rolling buffer of W for local layers);
without it the whole sequence is recomputed each step (the reference the tests compare against).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .attention import AttnContext
from .kv_cache import new_cache


def sample_next(logits: torch.Tensor, temperature: float = 0.0, top_k: int | None = None,
                top_p: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """logits (B, V) -> next ids (B,). temperature 0 is greedy."""
    if temperature <= 0.0:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        drop = cum - sorted_logits.softmax(dim=-1) >= top_p  # keep the smallest set reaching top_p
        logits = logits.scatter(-1, order, sorted_logits.masked_fill(drop, float("-inf")))
    return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(-1)


def _left_pad(prompts: Sequence[Sequence[int]] | torch.Tensor, pad_id: int, device: torch.device
              ) -> tuple[torch.Tensor, torch.Tensor]:
    rows = [list(map(int, p)) for p in (prompts.tolist() if isinstance(prompts, torch.Tensor) else prompts)]
    if not rows or any(len(r) == 0 for r in rows):
        raise ValueError("generate: every prompt needs at least one token (e.g. the BOS/EOS id)")
    P = max(map(len, rows))
    ids = torch.tensor([[pad_id] * (P - len(r)) + r for r in rows], device=device)  # (B, P)
    pad = torch.tensor([P - len(r) for r in rows], device=device)  # (B,)
    return ids, pad


@torch.no_grad()
def generate(model, prompts: Sequence[Sequence[int]] | torch.Tensor, max_new_tokens: int,
             temperature: float = 0.0, top_k: int | None = None, top_p: float | None = None,
             eos_id: int | None = 2, pad_id: int = 1, use_cache: bool = True,
             generator: torch.Generator | None = None) -> list[list[int]]:
    """Continue each prompt; returns the new tokens per row (up to and including EOS)."""
    config = model.config
    device = model.embed.tok.weight.device
    ids, pad = _left_pad(prompts, pad_id, device)
    B, P = ids.shape
    total = P + max_new_tokens
    if config.position == "learned" and int(total - pad.max()) > config.max_seq_len:
        raise ValueError(f"generate: prompt + max_new_tokens exceeds max_seq_len={config.max_seq_len}")
    was_training = model.training
    model.eval()
    char_table = model.embed.char_table()  # the vocabulary does not change while sampling
    head = model.output_weight(char_table)  # (V, C)
    caches = new_cache(config, B, total, pad, device, model.embed.tok.weight.dtype) if use_cache else None
    done = torch.zeros(B, dtype=torch.bool, device=device)
    out: list[list[int]] = [[] for _ in range(B)]
    fed = 0  # columns already in the cache
    for _ in range(max_new_tokens):
        start = fed if use_cache else 0
        cols = torch.arange(start, ids.shape[1], device=device)
        positions = (cols[None, :] - pad[:, None]).clamp(min=0)  # (B, T) per-row positions
        ctx = AttnContext.build(config, positions, len(cols), model.embed.tok.weight.dtype, pad=pad)
        h = model.run(ids[:, start:], positions, ctx, caches, char_table=char_table, term_ids=ids)
        fed = ids.shape[1]
        logits = F.linear(h[:, -1], head)  # (B, V)
        nxt = sample_next(logits, temperature, top_k, top_p, generator)  # (B,)
        nxt = torch.where(done, torch.full_like(nxt, pad_id), nxt)
        for b in torch.nonzero(~done).flatten().tolist():
            out[b].append(int(nxt[b]))
        if eos_id is not None:
            done |= nxt == eos_id
        ids = torch.cat([ids, nxt[:, None]], dim=1)  # (B, T + 1)
        if bool(done.all()):
            break
    model.train(was_training)
    return out
