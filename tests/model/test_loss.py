"""Chunked LM-head cross-entropy equals the full-logits loss, in value and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from model import chunked_cross_entropy


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_matches_full_cross_entropy_with_ignore_index(chunk):
    g = torch.Generator().manual_seed(0)
    h = torch.randn(3, 21, 16, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(50, 16, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 50, (3, 21), generator=g)
    y[0, :5] = -100
    ref = F.cross_entropy((h @ w.t()).view(-1, 50), y.view(-1), ignore_index=-100)
    ref_g = torch.autograd.grad(ref * 3, (h, w))
    loss = chunked_cross_entropy(h, w, y, chunk=chunk)
    got_g = torch.autograd.grad(loss * 3, (h, w))
    torch.testing.assert_close(loss, ref)
    for a, b in zip(got_g, ref_g, strict=True):
        torch.testing.assert_close(a, b)


def test_no_grad_path_and_all_ignored():
    h, w = torch.randn(10, 8), torch.randn(20, 8)
    y = torch.randint(0, 20, (10,))
    with torch.no_grad():
        torch.testing.assert_close(chunked_cross_entropy(h, w, y, chunk=3), F.cross_entropy(h @ w.t(), y))
    assert chunked_cross_entropy(h, w, torch.full((10,), -100)).item() == 0.0
    with pytest.raises(ValueError, match="10 hidden rows but 9 targets"):
        chunked_cross_entropy(h, w, y[:9])


def test_decoder_hidden_and_head_weight_give_the_same_loss():
    from model import Decoder, ModelConfig

    m = Decoder(ModelConfig.from_name("tiny"), seed=0)
    x = torch.randint(0, 512, (2, 33))
    logits = m(x[:, :-1])
    ref = F.cross_entropy(logits.reshape(-1, 512), x[:, 1:].reshape(-1))
    loss = chunked_cross_entropy(m(x[:, :-1], return_hidden=True), m.head_weight, x[:, 1:], chunk=16)
    torch.testing.assert_close(loss, ref, atol=1e-5, rtol=1e-5)
    loss.backward()
    assert m.embed.tok.weight.grad is not None and m.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
