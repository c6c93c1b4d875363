"""Step-by-step decoding for callers that drive generation themselves (the OpenAI-compatible
server, the `transformers` wrapper of an exported model): a left-padded batch, its KV cache and the
few recent tokens the term stage reads, advanced by `feed`.

It does what one iteration of `model.generate.generate` does (same positions, masks, cache and
embedding inputs, so the same tokens come out), plus what a long-lived caller needs: the cache
grows when more columns arrive than it was sized for, and finished rows can be dropped (`keep`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .attention import AttnContext
from .generate import _left_pad
from .kv_cache import LayerKV, new_cache


class DecodeState:
    """Decoding state of B left-padded rows. `pad` (B,) is each row's number of pad columns."""

    def __init__(self, model, pad: torch.Tensor, capacity: int = 64):
        self.model, self.config = model, model.config
        self.dtype = model.embed.tok.weight.dtype
        self.device = model.embed.tok.weight.device
        self.pad = pad.to(self.device)
        self.capacity = max(1, capacity)
        self.caches = new_cache(self.config, len(pad), self.capacity, self.pad, self.device, self.dtype)
        self.length = 0  # columns fed so far (pad columns included)
        # The term stage hashes at most term_max_tokens tokens ending at a position, so the last
        # term_max_tokens - 1 tokens are all the history it needs (see model/term_embedding.py).
        self.keep_recent = self.config.term_max_tokens - 1 if self.config.term_stage else 0
        self.recent = torch.zeros(len(pad), 0, dtype=torch.long, device=self.device)
        with torch.no_grad():
            self.char_table = model.embed.char_table()  # the vocabulary does not change while decoding
            self.head = model.output_weight(self.char_table)  # (V, C)

    @classmethod
    def start(cls, model, prompts: Sequence[Sequence[int]], pad_id: int = 1, max_new_tokens: int = 0
              ) -> tuple[DecodeState, torch.Tensor]:
        """Left-pad `prompts`, prefill them; returns the state and the prompts' last-position
        logits (B, V)."""
        ids, pad = _left_pad(prompts, pad_id, model.embed.tok.weight.device)
        state = cls(model, pad, capacity=ids.shape[1] + max_new_tokens)
        return state, state.logits(state.feed(ids)[:, -1])

    @property
    def batch_size(self) -> int:
        return self.pad.shape[0]

    @torch.no_grad()
    def feed(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, t): the next t columns of every row -> final hidden states (B, t, C)."""
        B, t = ids.shape
        if B != self.batch_size:
            raise ValueError(f"DecodeState.feed: got {B} rows, the state holds {self.batch_size}")
        if self.config.position == "learned" and int(self.length + t - self.pad.min()) > self.config.max_seq_len:
            raise ValueError(f"DecodeState.feed: sequence longer than max_seq_len={self.config.max_seq_len} "
                             "of the learned position table")
        self._reserve(self.length + t)
        cols = torch.arange(self.length, self.length + t, device=self.device)
        positions = (cols[None, :] - self.pad[:, None]).clamp(min=0)  # (B, t) per-row positions
        ctx = AttnContext.build(self.config, positions, t, self.dtype, pad=self.pad)
        history = torch.cat([self.recent, ids], dim=1)  # (B, k + t) ends with `ids`
        h = self.model.run(ids, positions, ctx, self.caches, char_table=self.char_table, term_ids=history)
        self.recent = history[:, history.shape[1] - min(self.keep_recent, history.shape[1]):]
        self.length += t
        return h  # (B, t, C)

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """Final hidden states (..., C) -> logits (..., V) through the (tied) LM head."""
        return F.linear(h, self.head)

    def keep(self, rows: torch.Tensor | Sequence[int]) -> None:
        """Keep only `rows` (indices into the current batch), e.g. to stop computing finished ones."""
        idx = torch.as_tensor(rows, dtype=torch.long, device=self.device)
        self.pad = self.pad[idx]
        self.recent = self.recent[idx]
        for c in self.caches:
            c.k, c.v, c.pad = c.k[idx], c.v[idx], self.pad

    def _reserve(self, columns: int) -> None:
        """Grow the caches (at least doubling) so that `columns` columns fit. Global layers need a
        slot per column; local layers never hold more than the window."""
        if columns <= self.capacity:
            return
        capacity = max(columns, 2 * self.capacity)
        grown = new_cache(self.config, self.batch_size, capacity, self.pad, self.device, self.dtype)
        for old, new in zip(self.caches, grown, strict=True):
            _copy_slots(old, new)
        self.caches, self.capacity = grown, capacity


def _copy_slots(old: LayerKV, new: LayerKV) -> None:
    """Move every held column to its slot in the bigger buffer (slot = column % size). A buffer
    holds its newest columns only, at most `old` size of them, so they land in distinct slots."""
    held = torch.nonzero(old.col >= 0).flatten()
    cols = old.col[held]
    slots = cols % new.k.shape[2]
    new.k[:, :, slots] = old.k[:, :, held]
    new.v[:, :, slots] = old.v[:, :, held]
    new.col[slots] = cols
    new.next_col = old.next_col
