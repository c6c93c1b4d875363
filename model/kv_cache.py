"""KV cache for generation: a rolling buffer of W slots for local layers, a full one for global layers.

Rows are left-padded; a "column" is an index in the padded batch, shared by all rows, so one slot
map serves the whole batch. Keys are cached after RoPE, so slot order does not matter.
"""

from __future__ import annotations

import torch

from .attention import padded_mask


class LayerKV:
    def __init__(self, B: int, H: int, D: int, size: int, window: int | None, pad: torch.Tensor,
                 device: torch.device, dtype: torch.dtype):
        self.k = torch.zeros(B, H, size, D, device=device, dtype=dtype)  # (B, H, S, hd)
        self.v = torch.zeros_like(self.k)
        self.col = torch.full((size,), -1, device=device, dtype=torch.long)  # column held by each slot
        self.window, self.pad, self.next_col = window, pad, 0

    def update(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """k, v (B, H, Tq, hd) for the next Tq columns -> keys, values, mask to attend over."""
        Tq, S = k.shape[2], self.k.shape[2]
        cols = torch.arange(self.next_col, self.next_col + Tq, device=k.device)
        k_all = torch.cat([self.k, k], dim=2)  # (B, H, S + Tq, hd)
        v_all = torch.cat([self.v, v], dim=2)
        mask = padded_mask(cols, torch.cat([self.col, cols]), self.pad, self.window)  # (B, 1, Tq, S + Tq)
        keep = min(Tq, S)  # a rolling buffer keeps only the newest columns
        slots = cols[-keep:] % S
        self.k[:, :, slots] = k[:, :, -keep:]
        self.v[:, :, slots] = v[:, :, -keep:]
        self.col[slots] = cols[-keep:]
        self.next_col += Tq
        return k_all, v_all, mask


def new_cache(config, B: int, max_len: int, pad: torch.Tensor, device: torch.device,
              dtype: torch.dtype) -> list[LayerKV]:
    """One LayerKV per layer: W slots for local layers, `max_len` for global ones."""
    caches = []
    for i in range(config.n_layer):
        window = None if config.is_global(i) else config.window
        size = max_len if window is None else min(window, max_len)
        caches.append(LayerKV(B, config.n_head, config.head_dim, size, window, pad, device, dtype))
    return caches
