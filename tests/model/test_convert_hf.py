"""BioGPT interop against a randomly initialised tiny transformers.BioGptForCausalLM."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from export.hf import to_hf_biogpt  # noqa: E402  (builds the transformers model; model/ imports only torch)
from model.convert_hf import from_hf_biogpt  # noqa: E402

VOCAB = 60


@pytest.fixture(scope="module")
def hf_model():
    torch.manual_seed(0)
    config = transformers.BioGptConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                                       intermediate_size=64, max_position_embeddings=64)
    return transformers.BioGptForCausalLM(config).eval()


@pytest.fixture
def ids():
    return torch.randint(0, VOCAB, (2, 40), generator=torch.Generator().manual_seed(1))


def test_logits_match(hf_model, ids):
    ours = from_hf_biogpt(hf_model).eval()
    c = ours.config
    assert (c.position, c.position_offset, c.window, c.char_stage, c.term_stage) == ("learned", 2, None, False, False)
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), hf_model(ids).logits, atol=1e-4, rtol=0)


def test_hybrid_stages_leave_outputs_unchanged_at_step_0(hf_model, ids):
    dict_tokens = ["<s>", "<pad>", "</s>", "<unk>"] + [f"w{i}@@" if i % 2 else f"w{i}" for i in range(VOCAB - 4)]
    ours = from_hf_biogpt(hf_model, tokens=dict_tokens, char_stage=True, term_stage=True).eval()
    assert bool(ours.embed.vocab_attached) and not ours.embed.ends_word[5]
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), hf_model(ids).logits, atol=1e-4, rtol=0)


def test_local_attention_changes_outputs_only_beyond_the_window(hf_model, ids):
    ours = from_hf_biogpt(hf_model, window=8, global_every=0).eval()
    with torch.no_grad():
        a, b = ours(ids), hf_model(ids).logits
    torch.testing.assert_close(a[:, :8], b[:, :8], atol=1e-4, rtol=0)
    assert (a[:, 8:] - b[:, 8:]).abs().max() > 1e-3


def test_export_round_trip(hf_model, ids):
    back = to_hf_biogpt(from_hf_biogpt(hf_model)).eval()
    with torch.no_grad():
        torch.testing.assert_close(back(ids).logits, hf_model(ids).logits, atol=1e-6, rtol=0)
    for k, v in hf_model.state_dict().items():
        torch.testing.assert_close(back.state_dict()[k], v)


def test_export_refuses_non_biogpt_configs(hf_model):
    with pytest.raises(ValueError, match="local attention layers have no BioGPT equivalent"):
        to_hf_biogpt(from_hf_biogpt(hf_model, window=8))
    with pytest.raises(ValueError, match="hybrid stages"):
        to_hf_biogpt(from_hf_biogpt(hf_model, char_stage=True))
