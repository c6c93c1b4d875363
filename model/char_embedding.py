"""Stage 2 of the hybrid embedding: a vector per vocabulary entry composed from its characters.

Tokens with similar spelling (-azole, -tinib, -mab) share the character embedding and convolution,
so rare pieces of chemical names get useful vectors. It runs over vocabulary rows once per step,
(U, L) -> (U, C), and the caller gathers them for every position. In eager training the rows are
the distinct ids of the batch (rows absent from the batch get no gradient, so computing them is
waste); under torch.compile, and for generation, it runs over the whole vocabulary (static shapes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .vocab import CHAR_PAD, CHAR_VOCAB


class CharComposer(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.kernel = config.char_kernel
        self.emb = nn.Embedding(CHAR_VOCAB, config.char_dim, padding_idx=CHAR_PAD)
        # A width-k convolution written as one matmul over k stacked shifts: CPU Conv1d with
        # L=16 and few channels is ~10x slower than the same FLOPs as a Linear.
        self.conv = nn.Linear(config.char_kernel * config.char_dim, config.char_channels)
        self.proj = nn.Linear(config.char_channels, config.d_model)

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        """chars (U, L) -> (U, C)."""
        U, L = chars.shape
        present = (chars != CHAR_PAD).unsqueeze(-1)  # (U, L, 1)
        x = self.emb(chars)  # (U, L, Cd)
        left = (self.kernel - 1) // 2
        x = F.pad(x, (0, 0, left, self.kernel - 1 - left))  # (U, L + k - 1, Cd)
        windows = torch.cat([x[:, i : i + L] for i in range(self.kernel)], dim=-1)  # (U, L, k*Cd)
        h = F.gelu(self.conv(windows))  # (U, L, Cc)
        # Mean over the real characters (max-pooling's backward costs ~2x more on CPU); empty
        # entries pool to 0.
        present = present.to(h.dtype)
        h = (h * present).sum(dim=1) / present.sum(dim=1).clamp(min=1.0)  # (U, Cc)
        return self.proj(h)  # (U, C)
