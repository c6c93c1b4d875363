"""Hybrid embedding: vocabulary tables, character composition, term hash (causal), zero gates, buffers."""

from __future__ import annotations

import io

import pytest
import torch

from model import Decoder, ModelConfig, vocab_tables
from model.term_embedding import prefix_buckets, word_starts

BPE = ["<s>", "<pad>", "</s>", "<unk>", " 2", "-(", "4", "-chlor", "oph", "enyl", " the", " ima", "tinib", "\n"]
FAIRSEQ = ["<s>", "<pad>", "</s>", "<unk>", "chlor@@", "oph@@", "enyl", "the", "ima@@", "tinib"]


def test_vocab_tables_byte_level_bpe():
    t = vocab_tables(BPE, max_chars=4)
    assert t.chars.shape == (len(BPE), 4)
    assert t.starts_word.tolist() == [True, True, True, True, True, False, False, False, False, False,
                                      True, True, False, True]
    assert t.ends_word[:4].all() and not t.ends_word[4:13].any() and t.ends_word[13]
    assert t.chars[10].tolist() == [ord(c) + 1 for c in "the"] + [0]  # leading space stripped
    assert t.chars[7].tolist() == [ord(c) + 1 for c in "-chl"]  # truncated to max_chars


def test_vocab_tables_fairseq_scheme():
    t = vocab_tables(FAIRSEQ)
    assert t.ends_word.tolist() == [True, True, True, True, False, False, True, True, False, True]
    assert not t.starts_word[4:].any()
    assert t.chars[4, :6].tolist() == [ord(c) + 1 for c in "chlor"] + [0]  # "@@" stripped
    hf = vocab_tables(["<s>", "<pad>", "</s>", "<unk>", "chlor", "oph", "enyl</w>", "the</w>"])
    assert hf.ends_word.tolist() == [True] * 4 + [False, False, True, True]
    assert hf.chars[6, :5].tolist() == [ord(c) + 1 for c in "enyl"] + [0]  # "</w>" stripped
    with pytest.raises(ValueError, match="empty"):
        vocab_tables([])
    with pytest.raises(ValueError, match="scheme='wordpiece'"):
        vocab_tables(FAIRSEQ, scheme="wordpiece")


def _reference_buckets(ids, starts, ends, K, buckets):
    """Python reference: hash of the word prefix (last K tokens of it) at each position."""
    P, M = 1_000_003, 2_147_483_647
    out = []
    for row in ids.tolist():
        r, s = [], 0
        for t, x in enumerate(row):
            if t == 0 or starts[x] or ends[row[t - 1]]:
                s = t
            h = 0
            for j in range(t, max(s, t - K + 1) - 1, -1):
                h = (h * P + row[j] + 1) % M
            r.append(h % buckets)
        out.append(r)
    return torch.tensor(out)


def test_term_hash_matches_reference_and_resets_at_boundaries():
    t = vocab_tables(BPE)
    ids = torch.tensor([[4, 5, 6, 7, 8, 9, 10, 11, 12, 1], [11, 12, 10, 4, 5, 6, 7, 8, 9, 9]])
    assert word_starts(ids, t.starts_word, t.ends_word)[0].tolist() == [0, 0, 0, 0, 0, 0, 6, 7, 7, 9]
    for K in (1, 3, 8):
        got = prefix_buckets(ids, t.starts_word, t.ends_word, K, 1000)
        assert torch.equal(got, _reference_buckets(ids, t.starts_word, t.ends_word, K, 1000))
    b = prefix_buckets(ids, t.starts_word, t.ends_word, 8, 10**6)
    assert b[0, 8] == b[1, 1]  # " ima" + "tinib" hashes the same wherever it occurs


def test_term_stage_is_causal():
    c = ModelConfig.from_name("tiny", char_stage=False)
    m = Decoder(c, seed=0).eval()
    m.attach_vocab(BPE + [f"x{i}" for i in range(c.vocab_size - len(BPE))])
    torch.nn.init.normal_(m.embed.term_gate)  # open the gate so the term vector matters
    x = torch.randint(4, len(BPE), (2, 20), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for t in (5, 12):
            y = x.clone()
            y[:, t] = 13 if y[0, t] != 13 else 12
            a, b = m.embed(x, torch.arange(20)[None]), m.embed(y, torch.arange(20)[None])
            torch.testing.assert_close(a[:, :t], b[:, :t])
            assert (a[:, t] - b[:, t]).abs().max() > 0


def test_char_composition_shares_spelling():
    c = ModelConfig.from_name("tiny", term_stage=False, vocab_size=6)
    m = Decoder(c, seed=0)
    m.attach_vocab(["<s>", "<pad>", "</s>", "<unk>", " imatinib", " gefitinib"])
    table = m.embed.char_table()  # (V, C) computed over the vocabulary once
    assert table.shape == (6, c.d_model)
    assert not torch.allclose(table[4], table[5])
    m.embed.chars[5] = m.embed.chars[4]  # same spelling -> same vector
    torch.testing.assert_close(m.embed.char_table()[5], table[4])


def test_gates_start_at_zero_so_stages_do_not_change_outputs():
    base = ModelConfig.from_name("tiny", char_stage=False, term_stage=False)
    plain = Decoder(base, seed=0).eval()
    hybrid = Decoder(base.replace(char_stage=True, term_stage=True), seed=1).eval()
    hybrid.load_state_dict(plain.state_dict(), strict=False)
    hybrid.attach_vocab([f"t{i}" for i in range(base.vocab_size)])
    x = torch.randint(0, base.vocab_size, (2, 30))
    with torch.no_grad():
        torch.testing.assert_close(hybrid(x), plain(x))
    loss = hybrid(x).logsumexp(-1).mean()
    loss.backward()  # gates get gradient, so training opens them
    assert hybrid.embed.char_gate.grad.abs().sum() > 0 and hybrid.embed.term_gate.grad.abs().sum() > 0


def test_vocab_buffers_survive_checkpoint_round_trip():
    c = ModelConfig.from_name("tiny", vocab_size=len(BPE))
    m = Decoder(c, seed=0)
    m.attach_vocab(BPE)
    buf = io.BytesIO()
    torch.save(m.state_dict(), buf)
    m2 = Decoder(c, seed=1)
    assert not bool(m2.embed.vocab_attached)
    m2.load_state_dict(torch.load(io.BytesIO(buf.getvalue())))
    assert bool(m2.embed.vocab_attached)
    for name in ("chars", "starts_word", "ends_word"):
        assert torch.equal(getattr(m2.embed, name), getattr(m.embed, name))
    with pytest.raises(ValueError, match="vocab_size=14"):
        m.attach_vocab(BPE[:5])


def test_char_vectors_from_batch_rows_equal_the_full_vocabulary_table():
    """Training computes the character stage for the distinct ids of the batch only; generation and
    compiled graphs use the whole-vocabulary table. Both give the same embeddings and gradients."""
    c = ModelConfig.from_name("tiny", term_stage=False)
    m = Decoder(c, seed=0)
    m.attach_vocab(["<s>", "<pad>", "</s>", "<unk>"] + [f" w{i}" for i in range(c.vocab_size - 4)])
    torch.nn.init.normal_(m.embed.char_gate)
    x = torch.randint(0, c.vocab_size, (2, 30))
    pos = torch.arange(30)[None]
    a = m.embed(x, pos)
    ga = torch.autograd.grad(a.pow(2).sum(), m.embed.char.conv.weight)[0]
    b = m.embed(x, pos, char_table=m.embed.char_table())
    gb = torch.autograd.grad(b.pow(2).sum(), m.embed.char.conv.weight)[0]
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(ga, gb)


def test_zero_gates_leave_the_plain_model_and_starve_the_stages_of_gradient():
    """gate_init=0 (the default): outputs equal the stages-off path and the composer gets no gradient
    at step 0; gate_init>0 gives it one (why the ablation tries a non-zero start)."""
    import torch

    from model import Decoder, ModelConfig
    from model.loss import chunked_cross_entropy

    x = torch.randint(0, 512, (2, 17), generator=torch.Generator().manual_seed(0))
    grads = {}
    for init in (0.0, 0.3):
        m = Decoder(ModelConfig.from_name("tiny", gate_init=init, char_output=True), seed=0)
        m.attach_vocab([f"w{i}" for i in range(512)])
        h = m(x[:, :-1], return_hidden=True)
        if init == 0.0:  # the head is exactly the token table, the input exactly token + position
            assert torch.equal(m.head_weight, m.embed.tok.weight)
        chunked_cross_entropy(h, m.head_weight, x[:, 1:]).backward()
        grads[init] = float(m.embed.char.proj.weight.grad.abs().sum())
    assert grads[0.0] == 0.0 and grads[0.3] > 0.0


def test_char_output_needs_the_character_stage_and_a_tied_head():
    import pytest

    from model import ModelConfig
    from model.config import ModelConfigError

    with pytest.raises(ModelConfigError, match="char_output"):
        ModelConfig.from_name("tiny", char_stage=False, char_output=True)
    with pytest.raises(ModelConfigError, match="tie_embeddings"):
        ModelConfig.from_name("tiny", tie_embeddings=False, char_output=True)
