"""Byte-level BPE: fixed special ids, leading-space word tokens, determinism, save/load, config."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from common.config import ConfigError
from data_prep.errors import PrepError
from data_prep.tokens.tokenizer import (
    SPECIAL_TOKENS,
    load_tokenizer,
    save_tokenizer,
    tokenizer_json,
    train_bpe,
    vocab_strings,
)
from tests.data_prep.conftest import prep_config

TEXTS = [
    "Imatinib inhibited BCR-ABL with an IC50 of 0.25 µM (p < 0.05) in K562 cells.",
    "BACKGROUND: Aspirin 100 mg/day reduced the risk by ±5% in patients ≥ 65 years.",
    "The TP53 and BRCA1 genes were sequenced; α-synuclein levels rose 2-fold.",
    "Metformin hydrochloride (500 mg) lowered HbA1c in type 2 diabetes mellitus.",
] * 30


def test_special_tokens_have_fixed_ids():
    tok = train_bpe(TEXTS, vocab_size=400)
    assert [tok.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3]
    assert tok.get_vocab_size() <= 400


def test_word_initial_tokens_decode_with_a_leading_space_and_text_round_trips():
    tok = train_bpe(TEXTS, vocab_size=400)
    text = "Imatinib inhibited BCR-ABL at 0.25 µM; α-synuclein ≥ 2"
    enc = tok.encode(text)
    assert tok.decode(enc.ids).strip() == text  # byte-level: lossless (µ, α, ≥ included)
    pieces = vocab_strings(tok)
    first = tok.decode([enc.ids[0]])
    assert first.startswith(" ") and pieces[enc.ids[0]] == first
    assert pieces[:4] == list(SPECIAL_TOKENS)
    assert any(p.startswith(" ") for p in pieces[4:]) and any(not p.startswith(" ") for p in pieces[4:])
    # never an <unk>: every byte is in the base alphabet
    assert 3 not in tok.encode("unseen 漢字 ☃ text").ids


def test_training_is_deterministic_and_save_load_keeps_the_hash(tmp_path):
    a, b = train_bpe(TEXTS, vocab_size=350), train_bpe(TEXTS, vocab_size=350)
    assert tokenizer_json(a) == tokenizer_json(b)
    sha1 = save_tokenizer(a, tmp_path / "t1" / "tokenizer.json")
    sha2 = save_tokenizer(b, tmp_path / "t2" / "tokenizer.json")
    assert sha1 == sha2
    loaded = load_tokenizer(tmp_path / "t1" / "tokenizer.json")
    assert loaded.encode(TEXTS[0]).ids == a.encode(TEXTS[0]).ids
    assert save_tokenizer(loaded, tmp_path / "t3" / "tokenizer.json") == sha1


def test_a_tokenizer_with_wrong_special_ids_is_refused(tmp_path):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel()
    tok.train_from_iterator(TEXTS, trainers.BpeTrainer(vocab_size=300, special_tokens=["</s>", "<s>"]))
    tok.save(str(tmp_path / "bad.json"))
    with pytest.raises(PrepError, match="special token"):
        load_tokenizer(tmp_path / "bad.json")
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(PrepError, match="junk.json"):
        load_tokenizer(tmp_path / "junk.json")


def test_config_validation_names_the_key(tmp_path):
    assert prep_config(tokenizer={"kind": "bpe", "vocab_size": 1000}).tokenizer.vocab_size == 1000
    with pytest.raises(ConfigError, match="tokenizer.vocab_size"):
        prep_config(tokenizer={"kind": "bpe", "vocab_size": 10})
    with pytest.raises(ConfigError, match="tokenizer.vocab_sise"):
        prep_config(tokenizer={"kind": "bpe", "vocab_sise": 1000})
    with pytest.raises(ConfigError, match="tokenizer.path"):
        prep_config(tokenizer={"kind": "pretrained", "path": str(tmp_path / "missing.json")})
