"""Causal self-attention (local sliding window or global) and the per-forward attention context.

The decoder builds one `AttnContext` per forward: it resolves the backend for local and global
layers, holds the RoPE angles and any mask (the FlexAttention block mask, or the explicit masks of
padded generation), and every layer reuses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from . import attention_backends as backends
from .config import ModelConfig
from .rope import apply_rope, rope_cos_sin


def resolve_backend(name: str, local: bool, T: int, window: int | None, device: torch.device,
                    dtype: torch.dtype) -> str:
    """`auto`: flash-attn or FlexAttention for local layers on GPU, SDPA with a mask for short CPU
    inputs, the blocked kernel for long CPU inputs; global layers use SDPA's causal kernels."""
    if name == "blocked" and not local:
        return "sdpa"  # full causal attention has no blocks to skip
    if name != "auto":
        return name
    if not local or window is None or T <= window:
        return "sdpa"
    if device.type == "cuda":
        half = dtype in (torch.float16, torch.bfloat16)
        return "flash" if half and backends.flash_available() else "flex"
    return "sdpa" if T <= 2 * window else "blocked"


@dataclass
class AttnContext:
    window: int | None
    local_backend: str
    global_backend: str
    rope: tuple[torch.Tensor, torch.Tensor] | None = None  # cos, sin (1|B, 1, T, hd/2)
    block_masks: dict[bool, Any] | None = None  # FlexAttention mask per layer kind (local?)
    masks: dict[bool, torch.Tensor] | None = None  # explicit (B, 1, T, T) masks (padded batches)

    @classmethod
    def build(cls, config: ModelConfig, positions: torch.Tensor, T: int, dtype: torch.dtype,
              pad: torch.Tensor | None = None) -> AttnContext:
        """positions (1|B, T); `pad` (B,) left-padding lengths switch to explicit masks."""
        device = positions.device
        rope = rope_cos_sin(positions, config.head_dim, config.rope_base, dtype) if config.position == "rope" else None
        kinds = {False: resolve_backend(config.attn_backend, True, T, config.window, device, dtype),
                 True: resolve_backend(config.attn_backend, False, T, config.window, device, dtype)}
        ctx = cls(config.window, kinds[False], kinds[True], rope)
        if pad is not None:
            cols = torch.arange(T, device=device)
            ctx.masks = {g: padded_mask(cols, cols, pad, None if g else config.window) for g in (False, True)}
        elif "flex" in kinds.values():
            ctx.block_masks = {g: backends.flex_block_mask(T, None if g else config.window, device)
                               for g in (False, True) if kinds[g] == "flex"}
        return ctx

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, is_global: bool,
               dropout_p: float) -> torch.Tensor:
        if self.masks is not None:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=self.masks[is_global], dropout_p=dropout_p)
        window = None if is_global else self.window
        name = self.global_backend if is_global else self.local_backend
        if name == "flex":
            return backends.flex_attention(q, k, v, window, dropout_p, block_mask=self.block_masks[is_global])
        return backends.BACKENDS[name](q, k, v, window, dropout_p)


def padded_mask(q_cols: torch.Tensor, k_cols: torch.Tensor, pad: torch.Tensor, window: int | None) -> torch.Tensor:
    """(B, 1, Tq, Tk) visibility for left-padded rows: causal, within the window, not a pad key.
    Columns are indices in the padded batch (-1 marks an empty cache slot). A query always sees
    itself so pad queries (whose outputs are never used) do not produce NaNs."""
    d = q_cols[:, None] - k_cols[None, :]  # (Tq, Tk)
    visible = (d >= 0) & (k_cols[None, :] >= 0)
    if window is not None:
        visible &= d < window
    real_key = k_cols[None, None, :] >= pad[:, None, None]  # (B, 1, Tk)
    return ((visible[None] & real_key) | (d == 0)[None])[:, None]  # (B, 1, Tq, Tk)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: ModelConfig, layer: int):
        super().__init__()
        self.n_head, self.head_dim = config.n_head, config.head_dim
        self.is_global = config.is_global(layer)
        self.dropout = config.attn_dropout
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=config.bias)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=config.bias)

    def forward(self, x: torch.Tensor, ctx: AttnContext, cache: Any = None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_head, self.head_dim).permute(2, 0, 3, 1, 4)  # (B, H, T, hd) each
        if ctx.rope is not None:
            q, k = apply_rope(q, *ctx.rope), apply_rope(k, *ctx.rope)
        dropout = self.dropout if self.training else 0.0
        if cache is not None:  # generation: attend to the cached keys plus these
            k, v, mask = cache.update(k, v)  # (B, H, S, hd), (B, 1, T, S)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        else:
            y = ctx.attend(q, k, v, self.is_global, dropout)  # (B, H, T, hd)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C)
        return self.proj(y)
