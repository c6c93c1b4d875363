"""The decoder: hybrid embedding -> blocks of local/global attention -> final LayerNorm -> tied LM head."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .attention import AttnContext
from .block import Block
from .config import ModelConfig
from .embedding import HybridEmbedding
from .vocab import VocabTables


class Decoder(nn.Module):
    def __init__(self, config: ModelConfig, seed: int | None = None):
        super().__init__()
        self.config = config
        # A seed gives the same weights on every machine without touching the global RNG.
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            self.embed = HybridEmbedding(config)
            self.blocks = nn.ModuleList(Block(config, i) for i in range(config.n_layer))
            self.ln_f = nn.LayerNorm(config.d_model, eps=config.norm_eps)
            self.lm_head = None if config.tie_embeddings else nn.Linear(config.d_model, config.vocab_size, bias=False)
            self.apply(self._init_weights)
            for name, p in self.named_parameters():  # GPT-2: scale residual projections by depth
                if name.endswith(("attn.proj.weight", "mlp.proj.weight")):
                    nn.init.normal_(p, std=config.init_std / math.sqrt(2 * config.n_layer))

    def _init_weights(self, m: nn.Module) -> None:
        std = self.config.init_std
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=std)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Conv1d):
            m.reset_parameters()

    @property
    def head_weight(self) -> torch.Tensor:
        """(V, C) LM head weight (the token table when tied, plus the character stage with
        char_output), for `model.loss.chunked_cross_entropy`."""
        return self.output_weight()

    def output_weight(self, char_table: torch.Tensor | None = None) -> torch.Tensor:
        """`head_weight` reusing an already computed `char_table` (generation computes it once)."""
        return self.embed.output_weight(char_table) if self.lm_head is None else self.lm_head.weight

    def attach_vocab(self, vocab: VocabTables | Sequence[str]) -> None:
        """Give the hybrid stages the decoded vocabulary (index = id), see `model.vocab.vocab_tables`."""
        self.embed.attach_vocab(vocab)

    def forward(self, input_ids: torch.Tensor, return_hidden: bool = False) -> torch.Tensor:
        """input_ids (B, T) -> logits (B, T, V), or final hidden states (B, T, C) when return_hidden."""
        B, T = input_ids.shape
        self._check_length(T)
        positions = torch.arange(T, device=input_ids.device)[None]  # (1, T)
        ctx = AttnContext.build(self.config, positions, T, self.embed.tok.weight.dtype)
        h = self.run(input_ids, positions, ctx)  # (B, T, C)
        return h if return_hidden else F.linear(h, self.head_weight)

    def run(self, input_ids: torch.Tensor, positions: torch.Tensor, ctx: AttnContext,
            caches: Sequence[Any] | None = None, **embed_kwargs: Any) -> torch.Tensor:
        """Embedding, blocks and final norm for prepared positions/context (also used by generation)."""
        x = self.embed(input_ids, positions, **embed_kwargs)  # (B, T, C)
        for i, block in enumerate(self.blocks):
            x = block(x, ctx, None if caches is None else caches[i])
        return self.ln_f(x)  # (B, T, C)

    def _check_length(self, T: int) -> None:
        if self.config.position == "learned" and T > self.config.max_seq_len:
            raise ValueError(f"sequence length {T} exceeds max_seq_len={self.config.max_seq_len} of the learned "
                             "position table; use position='rope' (with local layers) for longer contexts")

    def num_params(self, non_embedding: bool = False) -> int:
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.embed.tok.weight.numel() + (self.embed.pos.weight.numel() if self.embed.pos is not None else 0)
        return n

    @torch.no_grad()
    def generate(self, prompts: Sequence[Sequence[int]] | torch.Tensor, max_new_tokens: int,
                 **kwargs: Any) -> list[list[int]]:
        """See `model.generate.generate`."""
        from .generate import generate

        return generate(self, prompts, max_new_tokens, **kwargs)
