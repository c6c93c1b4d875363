"""model.flops: the analytic FLOP count against torch's FlopCounterMode on a real training step,
and the GPU peak table against real CUDA device names."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from model import Decoder, ModelConfig, chunked_cross_entropy
from model.flops import attended_keys, char_stage_flops, flops_per_token, peak_bf16_flops


def _counted_flops_per_token(c: ModelConfig, ids: torch.Tensor) -> float:
    """Matmul FLOPs of one forward + backward (chunked loss included) as torch counts them."""
    m = Decoder(c, seed=0)
    with FlopCounterMode(display=False) as counter:
        h = m(ids[:, :-1], return_hidden=True)
        chunked_cross_entropy(h, m.head_weight, ids[:, 1:]).backward()
    return counter.get_total_flops() / ids[:, :-1].numel()


def _naive_attention_excess(c: ModelConfig, T: int) -> float:
    """The naive backend multiplies full (T, T) score matrices; the analytic count takes only the
    keys a causal, windowed query attends to."""
    return sum(12.0 * c.d_model * (T - attended_keys(c, T, i)) for i in range(c.n_layer))


# bias=False: FlopCounterMode counts matmuls only, and LayerNorm parameters are then the only
# non-matmul weights left in the analytic 6N (0.5% of this model).
BASE = dict(bias=False, attn_backend="naive", char_stage=False, dropout=0.0, attn_dropout=0.0)


@pytest.mark.parametrize("tie", [True, False])
@pytest.mark.parametrize("term_stage", [True, False])
def test_flops_per_token_matches_flop_counter(tie, term_stage):
    c = ModelConfig.from_name("tiny", tie_embeddings=tie, term_stage=term_stage, **BASE)
    T = 64
    ids = torch.randint(4, c.vocab_size, (2, T + 1), generator=torch.Generator().manual_seed(0))
    counted = _counted_flops_per_token(c, ids) - _naive_attention_excess(c, T)
    assert flops_per_token(c, T, batch_size=2) == pytest.approx(counted, rel=1e-2)


def test_lm_head_counted_once_whether_tied_or_not():
    tied = ModelConfig.from_name("tiny", **BASE)
    untied = tied.replace(tie_embeddings=False)
    assert flops_per_token(untied, 128, 4) == pytest.approx(flops_per_token(tied, 128, 4))
    head = 6.0 * tied.d_model * tied.vocab_size
    assert flops_per_token(tied, 128, 4) - flops_per_token(tied, 128, 4, include_head=False) == pytest.approx(head)


def test_char_stage_counted_once_per_forward_over_the_vocabulary():
    on = ModelConfig.from_name("tiny", **{**BASE, "char_stage": True})
    off = on.replace(char_stage=False)
    # Every vocabulary entry occurs in the batch, so the eager stage (which runs over the distinct
    # ids) computes exactly the whole-vocabulary pass the analytic count assumes.
    T = on.vocab_size // 2
    ids = torch.cat([torch.arange(on.vocab_size).view(2, T), torch.zeros(2, 1, dtype=torch.long)], 1)
    counted = _counted_flops_per_token(on, ids) - _counted_flops_per_token(off, ids)
    assert char_stage_flops(on) / (2 * T) == pytest.approx(counted, rel=1e-2)
    assert flops_per_token(on, T, 2) - flops_per_token(off, T, 2) == pytest.approx(counted, rel=1e-2)
    # spread over the micro-batch: twice the batch, half the per-token share
    assert (flops_per_token(on, T, 4) - flops_per_token(off, T, 4)) == pytest.approx(counted / 2, rel=1e-2)
    assert flops_per_token(on, T) == flops_per_token(off, T)  # no batch size: left out (documented)


@pytest.mark.parametrize(("name", "peak"), [
    ("NVIDIA H100 80GB HBM3", 989e12),  # SXM5
    ("NVIDIA H100 PCIe", 756e12),
    ("NVIDIA H100 NVL", 835e12),
    ("NVIDIA H200", 989e12),
    ("NVIDIA H200 NVL", 835e12),
    ("NVIDIA GH200 480GB", 989e12),
    ("NVIDIA A100-SXM4-80GB", 312e12),
    ("NVIDIA A100 80GB PCIe", 312e12),
    ("NVIDIA GeForce RTX 4090", 165e12),
    ("NVIDIA L4", None),
    ("Tesla V100-SXM2-16GB", None),
])
def test_peak_by_cuda_device_name(name, peak):
    assert peak_bf16_flops(name) == peak
