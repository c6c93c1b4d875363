"""Attention kernels for causal full (global) and sliding-window (local) attention.

Every function takes q, k, v (B, H, T, hd) for the same T positions and returns (B, H, T, hd).
`window` W means query t sees keys in (t-W, t]; None means full causal attention.
- naive:   explicit (T, T) scores; the reference the tests compare against.
- sdpa:    PyTorch SDPA; is_causal for global, an explicit boolean mask for local (small T).
- blocked: local attention in blocks of W queries against 2W keys: O(T*W) memory and compute;
           faster than full causal SDPA on CPU from T = 2W up (see docs/benchmarks.md).
- flex:    FlexAttention with a block mask built once per forward (GPU, compiled).
- flash:   flash-attn's `window_size` (GPU, when the package is installed).
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F


def window_mask(Tq: int, Tk: int, window: int | None, device: torch.device) -> torch.Tensor:
    """(Tq, Tk) bool, True where the key is visible; queries are the last Tq of the Tk positions."""
    qpos = torch.arange(Tk - Tq, Tk, device=device)[:, None]
    d = qpos - torch.arange(Tk, device=device)[None, :]  # (Tq, Tk) distance back to the key
    visible = d >= 0
    return visible & (d < window) if window is not None else visible


def naive_attention(q, k, v, window: int | None, dropout_p: float = 0.0) -> torch.Tensor:
    T = q.shape[-2]
    att = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])  # (B, H, T, T)
    att = att.masked_fill(~window_mask(T, k.shape[-2], window, q.device), float("-inf"))
    att = F.dropout(att.softmax(dim=-1), dropout_p)
    return att @ v  # (B, H, T, hd)


def sdpa_attention(q, k, v, window: int | None, dropout_p: float = 0.0) -> torch.Tensor:
    T = q.shape[-2]
    if window is None or T <= window:  # the window covers everything: plain causal attention
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
    mask = window_mask(T, T, window, q.device)  # (T, T)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)


@functools.lru_cache(maxsize=8)
def _block_mask(W: int, device: torch.device) -> torch.Tensor:
    """(W, 2W), shared by every block: query a of a block sees key b of [previous block, own block]
    iff a < b <= a + W."""
    a = torch.arange(W, device=device)[:, None]
    b = torch.arange(2 * W, device=device)[None, :]
    return (b > a) & (b <= a + W)


def blocked_local_attention(q, k, v, window: int | None, dropout_p: float = 0.0) -> torch.Tensor:
    B, H, T, D = q.shape
    W = window
    if W is None or T <= W:
        return sdpa_attention(q, k, v, None, dropout_p)
    n = -(-T // W)  # number of query blocks
    pad = n * W - T
    if pad:  # only a ragged tail needs padding; padded keys sit after every real query (masked)
        q, k, v = (F.pad(x, (0, 0, 0, pad)) for x in (q, k, v))
    # Block 0 has no previous block and W >= its length: plain causal attention, no mask.
    y0 = F.scaled_dot_product_attention(q[:, :, :W], k[:, :, :W], v[:, :, :W], dropout_p=dropout_p, is_causal=True)
    # Blocks 1..n-1 as an extra batch dim; their [previous, own] keys are overlapping windows of
    # K/V (unfold is a view, so no concatenated copies are built or saved for backward), and one
    # (W, 2W) mask broadcasts over all of them.
    qb = q[:, :, W:].reshape(B, H, n - 1, W, D)
    kb = k.unfold(2, 2 * W, W).transpose(-1, -2)  # (B, H, n-1, 2W, D)
    vb = v.unfold(2, 2 * W, W).transpose(-1, -2)
    yb = F.scaled_dot_product_attention(qb, kb, vb, attn_mask=_block_mask(W, q.device), dropout_p=dropout_p)
    y = torch.cat([y0, yb.reshape(B, H, (n - 1) * W, D)], dim=2)  # (B, H, n*W, D)
    return y[:, :, :T] if pad else y


@functools.lru_cache(maxsize=1)
def _compiled_flex():
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=False)


@functools.lru_cache(maxsize=16)
def flex_block_mask(T: int, window: int | None, device: torch.device):
    """Built once per (T, W, device) and shared by every layer of that kind."""
    from torch.nn.attention.flex_attention import create_block_mask

    def causal(b, h, qi, ki):
        return qi >= ki

    def local(b, h, qi, ki):
        return (qi >= ki) & (qi - ki < window)

    return create_block_mask(causal if window is None else local, None, None, T, T, device=device)


def flex_attention(q, k, v, window: int | None, dropout_p: float = 0.0, block_mask=None) -> torch.Tensor:
    if dropout_p:
        raise ValueError("attn_backend='flex' does not support attn_dropout; set attn_dropout=0 or pick 'sdpa'")
    if block_mask is None:
        block_mask = flex_block_mask(q.shape[-2], window, q.device)
    return _compiled_flex()(q, k, v, block_mask=block_mask)


def flash_available() -> bool:
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        return False
    return True


def flash_attention(q, k, v, window: int | None, dropout_p: float = 0.0) -> torch.Tensor:
    try:
        from flash_attn import flash_attn_func
    except ImportError as e:
        raise RuntimeError("attn_backend='flash' needs the flash-attn package (pip install flash-attn) "
                           "and a CUDA GPU; use attn_backend='auto' otherwise") from e
    left = -1 if window is None else window - 1  # flash counts keys strictly before the query
    y = flash_attn_func(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), dropout_p,
                        causal=True, window_size=(left, 0))  # (B, T, H, hd)
    return y.transpose(1, 2)


BACKENDS = {"naive": naive_attention, "sdpa": sdpa_attention, "blocked": blocked_local_attention,
            "flex": flex_attention, "flash": flash_attention}
