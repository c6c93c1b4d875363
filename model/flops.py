"""Analytic parameter counts, training FLOPs per token and MFU (no model instantiation needed)."""

from __future__ import annotations

from .config import ModelConfig
from .vocab import CHAR_VOCAB

# Dense (no sparsity) bf16 tensor-core peaks, FLOP/s. Lightning's table halves the 4090 figure
# (82.6 T, the fp32-accumulate rate); we use the dense bf16 figure as the issue asks.
PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "RTX 4090": 165e12}


def count_params(c: ModelConfig) -> dict[str, int]:
    """Parameter count by part; 'total' matches `sum(p.numel() for p in Decoder(c).parameters())`."""
    C, F, V, b = c.d_model, c.d_ff, c.vocab_size, int(c.bias)
    attn = 3 * C * C + 3 * C * b + C * C + C * b
    mlp = C * F + F * b + F * C + C * b
    layer = attn + mlp + 2 * 2 * C  # + two LayerNorms
    parts = {
        "token_embedding": V * C,
        "position_embedding": (c.max_seq_len + c.position_offset) * C if c.position == "learned" else 0,
        "blocks": c.n_layer * layer,
        "final_norm": 2 * C,
        "lm_head": 0 if c.tie_embeddings else V * C,
        "char_stage": (CHAR_VOCAB * c.char_dim + c.char_kernel * c.char_dim * c.char_channels + c.char_channels
                       + c.char_channels * C + C + 3 * C) if c.char_stage else 0,
        "term_stage": (c.term_buckets * c.term_dim + c.term_dim * C + 3 * C) if c.term_stage else 0,
    }
    parts["total"] = sum(parts.values())
    parts["non_embedding"] = parts["total"] - parts["token_embedding"] - parts["position_embedding"]
    return parts


def attended_keys(c: ModelConfig, T: int, layer: int) -> float:
    """Average number of keys a query attends to at sequence length T (causal, windowed)."""
    W = T if c.is_global(layer) else min(c.window, T)
    # positions t < W see t + 1 keys, the rest see W
    return (W * (W + 1) / 2 + (T - W) * W) / T


def flops_per_token(c: ModelConfig, T: int, include_head: bool = True, tokens_per_step: int | None = None) -> float:
    """Training FLOPs per token: 6 * N_non-embedding (+ the LM-head matmul, 6*C*V, when include_head)
    + attention 12 * C * (keys actually attended) per layer. The character stage runs over the
    vocabulary (compiled) once per step: its cost is spread over `tokens_per_step` when given."""
    p = count_params(c)
    dense = p["non_embedding"] - p["char_stage"] - p["term_stage"] + (c.term_dim * c.d_model if c.term_stage else 0)
    flops = 6.0 * dense + (6.0 * c.d_model * c.vocab_size if include_head else 0.0)
    flops += sum(12.0 * c.d_model * attended_keys(c, T, i) for i in range(c.n_layer))
    if c.char_stage and tokens_per_step:
        per_entry = 2 * (c.max_chars * c.char_kernel * c.char_dim * c.char_channels + c.char_channels * c.d_model)
        flops += 3.0 * per_entry * c.vocab_size / tokens_per_step
    return flops


def mfu(tokens_per_s: float, flops_per_tok: float, peak_flops: float) -> float:
    return tokens_per_s * flops_per_tok / peak_flops
