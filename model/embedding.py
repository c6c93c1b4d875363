"""The three-stage hybrid embedding: token table (+ learned positions), character composition, term hash.

Stages 2 and 3 are each normalised and added through a per-channel gate that starts at zero, so
switching them on for a converted BioGPT leaves its outputs unchanged at step 0. The vocabulary
tables are persistent buffers: they travel with checkpoints and conversions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .char_embedding import CharComposer
from .config import ModelConfig
from .term_embedding import TermEmbedding
from .vocab import VocabTables, vocab_tables

__all__ = ["HybridEmbedding", "VocabTables", "vocab_tables"]


class HybridEmbedding(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        C, V = config.d_model, config.vocab_size
        self.config = config
        self.scale = math.sqrt(C) if config.scale_embedding else 1.0
        self.tok = nn.Embedding(V, C)
        self.pos = nn.Embedding(config.max_seq_len + config.position_offset, C) if config.position == "learned" else None
        self.char = CharComposer(config) if config.char_stage else None
        self.term = TermEmbedding(config) if config.term_stage else None
        for name, on in (("char", config.char_stage), ("term", config.term_stage)):
            self.add_module(f"{name}_norm", nn.LayerNorm(C, eps=config.norm_eps) if on else None)
            self.register_parameter(f"{name}_gate", nn.Parameter(torch.full((C,), config.gate_init)) if on else None)
        # Stage 2 on the output side: the head row of token v is tok[v] + out_gate * norm(char(v)).
        # Its gate starts at gate_init / scale, the same share of the token vector as on the input side.
        self.out_norm = nn.LayerNorm(C, eps=config.norm_eps) if config.char_output else None
        self.out_gate = (nn.Parameter(torch.full((C,), config.gate_init / self.scale))
                         if config.char_output else None)
        if config.char_stage or config.term_stage:
            # Until a vocabulary is attached every token is its own word with no characters.
            self.register_buffer("chars", torch.zeros(V, config.max_chars, dtype=torch.long))
            self.register_buffer("starts_word", torch.ones(V, dtype=torch.bool))
            self.register_buffer("ends_word", torch.zeros(V, dtype=torch.bool))
            self.register_buffer("vocab_attached", torch.tensor(False))
        self.drop = nn.Dropout(config.dropout)

    def attach_vocab(self, vocab: VocabTables | Sequence[str]) -> None:
        """Copy the character table and boundary flags of the decoded vocabulary into the buffers."""
        if not hasattr(self, "chars"):
            return  # hybrid stages off: nothing to hold
        if not isinstance(vocab, VocabTables):
            vocab = vocab_tables(vocab, max_chars=self.config.max_chars)
        V, L = self.chars.shape
        if vocab.chars.shape[0] != V:
            raise ValueError(f"attach_vocab: the vocabulary has {vocab.chars.shape[0]} tokens but the model "
                             f"was built for vocab_size={V}; pass the tokenizer the model was configured with")
        chars = vocab.chars[:, :L]
        self.chars.zero_()
        self.chars[:, : chars.shape[1]] = chars.to(self.chars.device)
        self.starts_word.copy_(vocab.starts_word)
        self.ends_word.copy_(vocab.ends_word)
        self.vocab_attached.fill_(True)

    def char_table(self) -> torch.Tensor | None:
        """(V, C) character-composed vector of every vocabulary entry (None when stage 2 is off)."""
        return None if self.char is None else self.char(self.chars)

    def output_weight(self, char_table: torch.Tensor | None = None) -> torch.Tensor:
        """(V, C) rows of the tied LM head: the token table, plus the character stage when char_output."""
        if self.out_gate is None:
            return self.tok.weight
        table = self.char_table() if char_table is None else char_table
        return self.tok.weight + self.out_gate * self.out_norm(table)

    def _char_vectors(self, ids: torch.Tensor, char_table: torch.Tensor | None) -> torch.Tensor:
        """(B, T, C) character-composed vectors, computed once per distinct row and gathered."""
        if char_table is None and torch.compiler.is_compiling():
            char_table = self.char_table()  # static shapes for the compiler: the whole vocabulary
        if char_table is not None:
            return F.embedding(ids, char_table)
        rows, inverse = torch.unique(ids, return_inverse=True)  # (U,), (B, T)
        return F.embedding(inverse, self.char(self.chars[rows]))  # (B, T, C)

    def forward(self, ids: torch.Tensor, positions: torch.Tensor, char_table: torch.Tensor | None = None,
                term_ids: torch.Tensor | None = None) -> torch.Tensor:
        """ids (B, T), positions (1|B, T) from 0 -> (B, T, C). `term_ids` (B, T' >= T) ends with `ids`
        and gives the term stage earlier tokens (cached generation); `char_table` skips recomputing."""
        x = self.tok(ids) * self.scale  # (B, T, C)
        if self.pos is not None:
            x = x + self.pos(positions + self.config.position_offset)
        if self.char is not None:
            x = x + self.char_gate * self.char_norm(self._char_vectors(ids, char_table))
        if self.term is not None:
            term_ids = ids if term_ids is None else term_ids
            x = x + self.term_gate * self.term_norm(self.term(term_ids, self.starts_word, self.ends_word, ids.shape[1]))
        return self.drop(x)
