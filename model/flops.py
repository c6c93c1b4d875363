"""Analytic parameter counts, training FLOPs per token, GPU peaks and MFU (no model instantiation).

`flops_per_token(config, seq_len, batch_size)` is THE model-FLOP count of the project: the
`train/mfu` metric and `benchmarks/bench_gpu_mfu.py` (and so `benchmarks/gpu_check.sh`) both call
it, so their MFU figures agree. `peak_bf16_flops(torch.cuda.get_device_name())` is the peak they
divide by.
"""

from __future__ import annotations

import re

from .config import ModelConfig
from .vocab import CHAR_VOCAB

# Dense (no sparsity) bf16 tensor-core peaks in FLOP/s, from NVIDIA's data sheets. Ordered: the
# first key found in the device name wins, so variants come before their family name.
# `torch.cuda.get_device_name()` gives e.g. "NVIDIA H100 80GB HBM3" (SXM), "NVIDIA H100 PCIe",
# "NVIDIA H100 NVL", "NVIDIA H200", "NVIDIA GH200 480GB", "NVIDIA A100-SXM4-80GB",
# "NVIDIA GeForce RTX 4090". The 4090 figure is the bf16 rate with fp32 accumulation (what
# autocast matmuls use); Lightning's table lists half of it.
PEAK_BF16_FLOPS: dict[str, float] = {
    "H100 NVL": 835e12,
    "H100 PCIe": 756e12,
    "H100": 989e12,  # SXM5 (any other H100 name)
    "GH200": 989e12,
    "H200 NVL": 835e12,
    "H200": 989e12,  # SXM
    "A100": 312e12,  # SXM and PCIe alike
    "RTX 4090": 165e12,
}


def peak_bf16_flops(device_name: str) -> float | None:
    """Dense bf16 peak of a GPU by its CUDA device name; None for a card not in the table."""
    name = re.sub(r"[\s_-]+", " ", device_name).lower()
    for key, peak in PEAK_BF16_FLOPS.items():
        if key.lower() in name:
            return peak
    return None


def count_params(c: ModelConfig) -> dict[str, int]:
    """Parameter count by part; 'total' matches `sum(p.numel() for p in Decoder(c).parameters())`
    and 'non_embedding' matches `Decoder.num_params(non_embedding=True)` (an untied LM head is in it)."""
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
                       + c.char_channels * C + C + 3 * C + (3 * C if c.char_output else 0)) if c.char_stage else 0,
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


def char_stage_flops(c: ModelConfig) -> float:
    """Training FLOPs of one character-stage pass over the whole vocabulary (forward + backward):
    the width-k convolution and the projection to d_model for every entry. It runs once per
    forward (per micro-batch), whatever the batch size; a compiled embedding and generation run it
    over the whole vocabulary (eager training only over the batch's distinct ids, a subset)."""
    if not c.char_stage:
        return 0.0
    per_entry = 2.0 * (c.max_chars * c.char_kernel * c.char_dim * c.char_channels + c.char_channels * c.d_model)
    return 3.0 * per_entry * c.vocab_size


def flops_per_token(c: ModelConfig, seq_len: int, batch_size: int | None = None, include_head: bool = True) -> float:
    """Training FLOPs per token (forward 2 + backward 4 per weight and token):

      6 x (block weights + final norm + term-stage projection)    every token passes through them
    + 6 x d_model x vocab                                          the LM-head matmul (tied or not:
                                                                   counted once), unless include_head=False
    + 12 x d_model x (keys attended) per layer                     QK^T and AV over the window only
    + char_stage_flops / (batch_size x seq_len)                    one vocabulary pass per micro-batch

    `batch_size` is the micro-batch per device (sequences per forward). Without it the character
    stage cannot be spread over tokens and is left out; every MFU figure must pass it.
    """
    p = count_params(c)
    dense = p["blocks"] + p["final_norm"] + (c.term_dim * c.d_model if c.term_stage else 0)
    flops = 6.0 * dense + (6.0 * c.d_model * c.vocab_size if include_head else 0.0)
    flops += sum(12.0 * c.d_model * attended_keys(c, seq_len, i) for i in range(c.n_layer))
    if batch_size:
        flops += char_stage_flops(c) / (batch_size * seq_len)
    return flops


def mfu(tokens_per_s: float, flops_per_tok: float, peak_flops: float) -> float:
    return tokens_per_s * flops_per_tok / peak_flops
