"""Stage 3 of the hybrid embedding: a hashed embedding of the word prefix the current token completes.

For position t the prefix is x[s..t], s the first token of the current word (causal: only the
current and earlier tokens). Multi-token names such as "2-(4-chlorophenyl)-N-methylacetamide"
thus get a vector of their own. The hash is a polynomial over token ids, vectorised with a short
loop over the last `term_max_tokens` positions (never over T).
"""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig

_P = 1_000_003  # hash multiplier (prime)
_M = 2_147_483_647  # modulus 2^31 - 1 keeps h * _P inside int64


def word_starts(ids: torch.Tensor, starts_word: torch.Tensor, ends_word: torch.Tensor) -> torch.Tensor:
    """(B, T) index of the first token of the word each position belongs to (within the input)."""
    B, T = ids.shape
    boundary = starts_word[ids].clone()  # (B, T)
    boundary[:, 1:] |= ends_word[ids[:, :-1]]
    boundary[:, 0] = True
    t = torch.arange(T, device=ids.device)
    return torch.where(boundary, t, torch.zeros_like(t)).cummax(dim=1).values  # (B, T)


def prefix_buckets(ids: torch.Tensor, starts_word: torch.Tensor, ends_word: torch.Tensor,
                   max_tokens: int, buckets: int) -> torch.Tensor:
    """(B, T) bucket of the hash of x[max(s, t-max_tokens+1)..t]."""
    start = word_starts(ids, starts_word, ends_word)  # (B, T)
    t = torch.arange(ids.shape[1], device=ids.device)
    h = torch.zeros_like(ids)
    for k in range(max_tokens):
        prev = ids.roll(k, dims=1)  # (B, T) x[t-k]; wrapped-around entries fail `inside`
        inside = (t - k) >= start
        h = torch.where(inside, (h * _P + prev + 1) % _M, h)
    return h % buckets


class TermEmbedding(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.max_tokens = config.term_max_tokens
        self.table = nn.Embedding(config.term_buckets, config.term_dim)
        self.proj = nn.Linear(config.term_dim, config.d_model, bias=False)

    def forward(self, ids: torch.Tensor, starts_word: torch.Tensor, ends_word: torch.Tensor,
                last: int | None = None) -> torch.Tensor:
        """ids (B, T') -> (B, T, C) for the last `last` positions (all when None)."""
        b = prefix_buckets(ids, starts_word, ends_word, self.max_tokens, self.table.num_embeddings)
        if last is not None:
            b = b[:, -last:]  # (B, T)
        return self.proj(self.table(b))  # (B, T, C)
