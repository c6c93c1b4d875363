"""Generation: cached == uncached, batch == single rows, EOS stop, sampling filters."""

from __future__ import annotations

import pytest
import torch

from model import Decoder, ModelConfig
from model.generate import sample_next


@pytest.fixture(scope="module", params=[False, True], ids=["head=tokens", "head=tokens+chars"])
def model(request):
    c = ModelConfig.from_name("tiny", window=6, global_every=2, char_output=request.param)
    m = Decoder(c, seed=0).eval()
    m.attach_vocab(["<s>", "<pad>", "</s>", "<unk>"] + [(" " if i % 3 == 0 else "") + f"w{i}" for i in range(508)])
    gates = (m.embed.char_gate, m.embed.term_gate) + ((m.embed.out_gate,) if request.param else ())
    for gate in gates:  # exercise the hybrid stages (and the character-shaped head) too
        torch.nn.init.normal_(gate, std=0.5)
    return m


PROMPTS = [[0, 17, 43, 99, 5, 61, 7, 8, 9, 10, 11, 12], [0, 300, 21], [0, 5]]


def test_cached_and_uncached_generation_give_the_same_tokens(model):
    # 12 + 20 tokens > window 6: the local layers' rolling buffers wrap several times
    cached = model.generate(PROMPTS, 20, eos_id=None)
    uncached = model.generate(PROMPTS, 20, eos_id=None, use_cache=False)
    assert cached == uncached and all(len(r) == 20 for r in cached)


def test_sampled_generation_cached_equals_uncached(model):
    kw = dict(temperature=0.9, top_k=50, top_p=0.9, eos_id=None)
    a = model.generate(PROMPTS, 12, generator=torch.Generator().manual_seed(1), **kw)
    b = model.generate(PROMPTS, 12, generator=torch.Generator().manual_seed(1), use_cache=False, **kw)
    assert a == b


def test_batched_rows_equal_single_rows(model):
    batch = model.generate(PROMPTS, 10, eos_id=None)
    for prompt, row in zip(PROMPTS, batch, strict=True):
        assert model.generate([prompt], 10, eos_id=None)[0] == row


def test_cached_generation_matches_the_plain_forward(model):
    """Greedy tokens equal the argmax of Decoder.forward on the growing sequence (no padding)."""
    seq = list(PROMPTS[0])
    out = model.generate([seq], 8, eos_id=None)[0]
    with torch.no_grad():
        for tok in out:
            assert int(model(torch.tensor([seq]))[0, -1].argmax()) == tok
            seq.append(tok)


def test_stops_at_eos(model):
    first = model.generate([PROMPTS[1]], 5, eos_id=None)[0]
    eos = first[-1]
    out = model.generate([PROMPTS[1], PROMPTS[0]], 5, eos_id=eos)
    assert out[0] == first[: first.index(eos) + 1]  # EOS included, nothing after it
    assert len(out[1]) <= 5 and eos not in out[1][:-1]


def test_sampling_filters():
    logits = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    assert sample_next(logits).tolist() == [3]
    g = torch.Generator().manual_seed(0)
    draws = {int(sample_next(logits, 1.0, top_k=2, generator=g)) for _ in range(200)}
    assert draws == {2, 3}
    draws = {int(sample_next(logits, 1.0, top_p=0.5, generator=g)) for _ in range(200)}
    assert draws == {3}  # p(3) = 0.64 >= 0.5 alone
    with pytest.raises(ValueError, match="at least one token"):
        Decoder(ModelConfig.from_name("tiny")).generate([[]], 2)


def test_learned_positions_all_global_cached_equals_uncached():
    """The BioGPT layout (learned positions, every layer global): per-row positions with left padding."""
    m = Decoder(ModelConfig.from_name("tiny", position="learned", max_seq_len=64, window=None,
                                      char_stage=False, term_stage=False), seed=2).eval()
    prompts = [[0, 9, 8, 7, 6], [0, 44]]
    assert m.generate(prompts, 8, eos_id=None) == m.generate(prompts, 8, eos_id=None, use_cache=False)
    with pytest.raises(ValueError, match="max_seq_len=64"):
        m.generate(prompts, 80)
