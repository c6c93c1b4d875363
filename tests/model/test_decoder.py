"""Decoder: shapes, hidden states, seeded init, learned positions, torch.compile on CPU."""

from __future__ import annotations

import pytest
import torch

from model import Decoder, ModelConfig


def test_forward_returns_logits_and_hidden():
    c = ModelConfig.from_name("tiny")
    m = Decoder(c, seed=0)
    x = torch.randint(0, c.vocab_size, (3, 20))
    logits, hidden = m(x), m(x, return_hidden=True)
    assert logits.shape == (3, 20, c.vocab_size) and hidden.shape == (3, 20, c.d_model)
    torch.testing.assert_close(logits, hidden @ m.head_weight.t())
    assert m.head_weight is m.embed.tok.weight  # tied, as BioGPT


def test_untied_head():
    m = Decoder(ModelConfig.from_name("tiny", tie_embeddings=False), seed=0)
    assert m.head_weight is m.lm_head.weight and m.head_weight is not m.embed.tok.weight


def test_seeded_init_is_deterministic_and_leaves_global_rng_alone():
    c = ModelConfig.from_name("tiny")
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b = Decoder(c, seed=7), Decoder(c, seed=7)
    assert torch.equal(torch.rand(1), before)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    other = Decoder(c, seed=8)
    assert not torch.equal(a.blocks[0].attn.qkv.weight, other.blocks[0].attn.qkv.weight)


def test_learned_positions_limit_is_a_clear_error():
    m = Decoder(ModelConfig.from_name("tiny", position="learned", max_seq_len=16))
    assert m(torch.zeros(1, 16, dtype=torch.long)).shape[1] == 16
    with pytest.raises(ValueError, match="exceeds max_seq_len=16"):
        m(torch.zeros(1, 17, dtype=torch.long))


def test_dropout_only_in_training():
    m = Decoder(ModelConfig.from_name("tiny", dropout=0.5, attn_dropout=0.2), seed=0)
    x = torch.randint(0, 512, (1, 12))
    m.eval()
    torch.testing.assert_close(m(x), m(x))
    m.train()
    assert not torch.allclose(m(x), m(x))


@pytest.mark.slow
def test_torch_compile_tiny_on_cpu():
    """Forward only: compiling the backward too takes ~2 minutes of C++ builds on 2 shared cores.
    The training benchmark (benchmarks/bench_model_cpu.py --compile) compiles the full step."""
    c = ModelConfig.from_name("tiny")
    m = Decoder(c, seed=0).eval()
    x = torch.randint(0, c.vocab_size, (2, 40))  # T > 2W: the blocked local kernel is compiled too
    with torch.no_grad():
        ref = m(x)
        out = torch.compile(m)(x)
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
