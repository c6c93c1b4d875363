"""tiktoken in the shard stage (data_prep/tokens/fast_encode.py): the same ids as `tokenizers` on real
text, on hostile strings and on every BMP code point; byte-identical shards with either encoder
(in process and with 2 processes); non-qualifying tokenizers refused with the reason; the
first-batch safety net; `shards.encoder` in the config; the tokenizer sample spread by bytes."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
from pathlib import Path

import pytest
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

from common.config import ConfigError
from data_prep.config import config_hash
from data_prep.document import Document
from data_prep.pipeline import stage_tokenize
from data_prep.pipeline.stage_merge import DocumentsWriter
from data_prep.pipeline.stage_tokenize import (
    choose_encoder,
    sample_fraction,
    tokenize_to_shards,
    training_texts,
)
from data_prep.tokens import fast_encode
from data_prep.tokens.fast_encode import FastEncoder, qualification, tiktoken_encoding
from data_prep.tokens.shards import split_of
from data_prep.tokens.tokenizer import BpeTokenizerConfig, save_tokenizer, train_bpe
from tests.conftest import SHARED_DATA, shared_path
from tests.data_prep.conftest import abstract_text, prep_config

pytest.importorskip("tiktoken", reason="tiktoken is a main dependency (pyproject.toml); reinstall the project")

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Strings where a careless port would differ: prefix space, whitespace runs, CRLF, NFC, astral and
# newer code points, added tokens, contractions, long single words.
HOSTILE = [
    "", " ", "  ", " a", "a", "\n", "\r\n", "a\r\nb\r\n", "x \r\n y  ", "\t tab", "\u00a0nbsp first", "trailing   ",
    "😀 emoji 🧬👩‍🔬 ZWJ", "𝔸𝕓𝕔 math alphanumerics", "e\u0301 combining", "café Ménière", "ﬁ ligature", "\u212b angstrom",
    ">\u0338 <\u0338 =\u0338", "'s 'S 'll 'd '", "\u3000ideographic", "\u2028line\u2029para", "\u200bzwsp", "\u180e mongolian",
    "\x85 nel \x0b\x0c", "١٢٣ ½ ² Ⅻ", "漢字かな", "\ufeffbom", "\U000e0001 tag", "\U0010ffff", "\x00nul", "ǅ ß ẞ",
    "a\u0898\u0899 Unicode 14 marks: Python's NFC reorders them, tokenizers' does not", "\u1ac1\u1ac2", "IC50 0.25 µM (p < 0.05) ±5% ≥ 65 α-synuclein",
    "a" * 50_000, "ACGT" * 20_000, "word " * 10_000,
    "before </s> after", "a</s>b", "</s>", "<pad><pad>", " <unk>", "<s>x</s>", "<s", "</ s>",
]


def corpus_texts(n: int) -> list[str]:
    """The first n documents of ../shared/data/corpus (skip with the reason when absent; under CI=true, fail)."""
    path = SHARED_DATA / "corpus" / "corpus.jsonl.gz"
    if CI and not path.exists():
        pytest.fail(f"CI=true: real data not available: {path}")
    path = shared_path("corpus", "corpus.jsonl.gz")
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            out.append(json.loads(line)["text"])
            if len(out) == n:
                break
    return out


def generated_texts(n: int) -> list[str]:
    extra = ["µM ± α-β ≥ 5", "café Ménière Sjögren", "β-lactam 漢字", "", " leading space", "CRLF\r\nline", "e\u0301"]
    return [abstract_text(i, 20 + i % 50) + " " + extra[i % len(extra)] for i in range(n)]


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    """data_prep's trainer on generated text: no ../shared needed."""
    return train_bpe(generated_texts(400) + HOSTILE[:40], vocab_size=700)


@pytest.fixture(scope="module")
def fast(tok):
    enc, reason = tiktoken_encoding(tok)
    assert enc is not None, reason
    with FastEncoder(tok, enc, threads=2) as f:
        yield f


def hf_ids(tok: Tokenizer, texts: list[str]) -> list[list[int]]:
    return [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]


# ---- identical ids -----------------------------------------------------------------------------


def test_same_ids_on_real_text():
    texts = corpus_texts(4000)
    tok = train_bpe(texts[:1500], vocab_size=4000)
    assert qualification(tok) is None
    enc, _ = tiktoken_encoding(tok)
    with FastEncoder(tok, enc, threads=2) as f:
        held_out = texts[1500:]
        assert f.encode(held_out) == hf_ids(tok, held_out)
        assert sum(f.prepared(t) is None for t in held_out) < len(held_out) // 100  # tiktoken did the work


def test_same_ids_on_hostile_strings(tok, fast):
    assert fast.encode(HOSTILE) == hf_ids(tok, HOSTILE)
    assert fast.encode([]) == []


def test_which_texts_go_to_tokenizers(fast):
    assert fast.prepared("") == "" and fast.prepared(" x") == " x" and fast.prepared("x") == " x"
    assert fast.prepared("e\u0301") == " \u00e9"  # NFC, then the prefix space
    assert fast.prepared("\r\n") == " \r\n"
    for text in ("a</s>b", "<pad>", "µ <unk>", "😀", "\u0897", "a\ud800"):
        assert fast.prepared(text) is None, text


def test_added_token_in_text_is_split_out_as_its_id(tok, fast):
    text = "Results </s> Methods"
    ids = fast.encode([text])[0]
    assert ids == hf_ids(tok, [text])[0]
    assert 2 in ids  # tokenizers splits "</s>" out as EOS even with add_special_tokens=False


def test_every_bmp_code_point_in_context(tok, fast):
    # Every assigned-by-3.2 character takes the tiktoken path: its NFC and regex classes must agree.
    cps = [c for c in range(0x10000) if not 0xD800 <= c < 0xE000]
    texts = []
    for i in range(0, len(cps), 8):
        g = "".join(map(chr, cps[i:i + 8]))
        texts += [g, "a" + g[:4] + " " + g[4:] + "1 ", " " + g[0] + "b'" + g[1:3]]
    assert fast.encode(texts) == hf_ids(tok, texts)


def test_lone_surrogate_raises_as_tokenizers_does(tok, fast):
    with pytest.raises(Exception) as theirs:
        tok.encode_batch(["a\ud800b"], add_special_tokens=False)
    with pytest.raises(type(theirs.value)):
        fast.encode(["fine", "a\ud800b"])


def test_threads_keep_the_order(tok):
    enc, _ = tiktoken_encoding(tok)
    texts = generated_texts(300)
    with FastEncoder(tok, enc, threads=1) as one, FastEncoder(tok, enc, threads=3) as three:
        assert three.encode(texts) == one.encode(texts) == hf_ids(tok, texts)


# ---- shards -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, tok):
    """generated documents (some with </s>, hostile strings) as documents/*.parquet."""
    root = tmp_path_factory.mktemp("corpus")
    w = DocumentsWriter(root / "documents", 700, 100, "zstd")
    texts = generated_texts(1400) + [t for t in HOSTILE if t.strip()]
    for i, text in enumerate(texts):
        doc_id = f"gen:{i}"
        w.add(Document(id=doc_id, text=text, source="test", license="test"), split_of(doc_id, 0.1))
    return root, w.close()


def shard_digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def write_shards(corpus, tok, name: str, processes: int, encoder: str) -> dict[str, str]:
    root, parts = corpus
    tokenize_to_shards(root, parts, tok, max_tokens=20_000, batch_docs=256, processes=processes,
                       shard_dir=root / name, encoder=encoder)
    return shard_digest(root / name)


def test_shards_are_byte_identical_with_either_encoder(corpus, tok):
    reference = write_shards(corpus, tok, "hf0", 0, "tokenizers")
    assert len(reference) > 4  # several shards per split: the boundaries are compared too
    assert write_shards(corpus, tok, "tt0", 0, "tiktoken") == reference
    assert write_shards(corpus, tok, "tt2", 2, "tiktoken") == reference
    assert write_shards(corpus, tok, "auto2", 2, "auto") == reference


@pytest.mark.parametrize("processes", [0, 2])
def test_safety_net_falls_back_to_tokenizers_on_a_mismatch(corpus, tok, processes, monkeypatch, caplog):
    reference = write_shards(corpus, tok, f"ref{processes}", processes, "tokenizers")
    plain = FastEncoder._encode_plain

    def off_by_one(self, texts):  # a wrong id in the 6th text tiktoken encodes
        out = plain(self, texts)
        if len(out) > 5:
            out[5] = [out[5][0] ^ 1, *out[5][1:]]
        return out

    monkeypatch.setattr(FastEncoder, "_encode_plain", off_by_one)  # forked workers inherit it
    with caplog.at_level(logging.WARNING, logger=stage_tokenize.__name__):
        got = write_shards(corpus, tok, f"net{processes}", processes, "tiktoken")
    assert got == reference
    assert "different ids for document gen:5" in caplog.text and "with tokenizers" in caplog.text


# ---- tokenizers tiktoken cannot stand in for ---------------------------------------------------


def _edited(tok: Tokenizer, edit) -> Tokenizer:
    d = json.loads(tok.to_str())
    edit(d)
    return Tokenizer.from_str(json.dumps(d))


def _swap_two_merge_ids(d):
    vocab, merges = d["model"]["vocab"], d["model"]["merges"]
    a, b = ("".join(m) if isinstance(m, list) else m.replace(" ", "") for m in merges[10:12])
    vocab[a], vocab[b] = vocab[b], vocab[a]


def _whitespace_bpe(tok):
    t = Tokenizer(models.BPE(vocab=dict(tok.get_vocab()), merges=[]))
    t.normalizer = normalizers.NFC()
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    return t


def _truncating(tok):
    t = Tokenizer.from_str(tok.to_str())
    t.enable_truncation(8)
    return t


NOT_QUALIFYING = {
    "pre_tokenizer": lambda tok: _whitespace_bpe(tok),
    "add_prefix_space": lambda tok: _edited(tok, lambda d: d["pre_tokenizer"].update(add_prefix_space=False)),
    "normalizer": lambda tok: _edited(tok, lambda d: d.update(normalizer={"type": "Lowercase"})),
    "dropout": lambda tok: _edited(tok, lambda d: d["model"].update(dropout=0.1)),
    "end_of_word_suffix": lambda tok: _edited(tok, lambda d: d["model"].update(end_of_word_suffix="</w>")),
    "truncates": lambda tok: _truncating(tok),
    "merge 11": lambda tok: _edited(tok, _swap_two_merge_ids),
}


@pytest.mark.parametrize("what", NOT_QUALIFYING)
def test_a_tokenizer_of_another_shape_is_refused_with_the_reason(tok, what, corpus):
    other = NOT_QUALIFYING[what](tok)
    reason = qualification(other)
    assert reason is not None and what in reason, reason
    assert tiktoken_encoding(other) == (None, reason)
    assert choose_encoder(other, "auto") == (None, f"shards.encoder=auto and tiktoken cannot stand in: {reason}")
    with pytest.raises(ConfigError) as e:
        choose_encoder(other, "tiktoken")
    assert e.value.key == "shards.encoder" and what in str(e.value)


def test_auto_falls_back_and_tiktoken_refuses_in_the_stage(corpus, tok, caplog):
    other = NOT_QUALIFYING["pre_tokenizer"](tok)
    root, parts = corpus
    with caplog.at_level(logging.INFO, logger=stage_tokenize.__name__):
        tokenize_to_shards(root, parts, other, 1 << 20, 512, 0, shard_dir=root / "other", encoder="auto")
    assert "encoding with tokenizers: shards.encoder=auto and tiktoken cannot stand in: its pre_tokenizer" in caplog.text
    with pytest.raises(ConfigError, match="shards.encoder"):
        tokenize_to_shards(root, parts, other, 1 << 20, 512, 0, shard_dir=root / "other2", encoder="tiktoken")
    assert not (root / "other2").exists()


def test_without_tiktoken_auto_uses_tokenizers(tok, monkeypatch):
    monkeypatch.setattr(fast_encode, "tiktoken_available", lambda: False)
    encoding, why = choose_encoder(tok, "auto")
    assert encoding is None and "tiktoken is not installed" in why


# ---- config ------------------------------------------------------------------------------------


def test_shards_encoder_in_the_config(tok, tmp_path, monkeypatch):
    assert prep_config().shards.encoder == "auto"
    with pytest.raises(ConfigError, match="shards.encoder"):
        prep_config(shards={"encoder": "fast"})
    # the encoder never changes the bytes: not in the config hash
    assert config_hash(prep_config(shards={"encoder": "tiktoken"})) == config_hash(prep_config())
    other = tmp_path / "other.json"
    save_tokenizer(NOT_QUALIFYING["normalizer"](tok), other)
    with pytest.raises(ConfigError) as e:  # a pretrained tokenizer is known up front: refused before any work
        prep_config(tokenizer={"kind": "pretrained", "path": str(other)}, shards={"encoder": "tiktoken"})
    assert e.value.key == "shards.encoder" and "normalizer" in str(e.value)
    prep_config(tokenizer={"kind": "pretrained", "path": str(other)}, shards={"encoder": "auto"})
    monkeypatch.setattr("data_prep.config.tiktoken_available", lambda: False)
    with pytest.raises(ConfigError, match="shards.encoder.*not installed"):
        prep_config(shards={"encoder": "tiktoken"})


# ---- the tokenizer's sample --------------------------------------------------------------------


def test_byte_capped_sample_spans_the_whole_corpus(tmp_path, monkeypatch):
    w = DocumentsWriter(tmp_path / "documents", 500, 100, "zstd")
    texts = generated_texts(2000)
    for i, text in enumerate(texts):
        w.add(Document(id=f"s:{i}", text=text, source="test", license="test"), "train")
    parts = w.close()
    total = sum(len(t.encode()) for t in texts)
    cfg = BpeTokenizerConfig(max_train_docs=10**6, max_train_bytes=total // 5)
    assert 0.15 < sample_fraction(tmp_path, parts, len(texts), cfg) < 0.2
    sample = list(training_texts(tmp_path, parts, len(texts), cfg))
    assert sum(len(t.encode()) for t in sample) <= cfg.max_train_bytes
    last = max(texts.index(t) for t in sample)
    assert last > 0.9 * len(texts)  # not the first fifth of the corpus in document order
    # the cap still holds when the size estimate falls short (then the sample is a prefix)
    monkeypatch.setattr(stage_tokenize, "text_bytes", lambda out_dir, parts: 1)
    capped = list(training_texts(tmp_path, parts, len(texts), cfg))
    assert capped == texts[:len(capped)]
    assert sum(len(t.encode()) for t in capped) <= cfg.max_train_bytes < sum(len(t.encode()) for t in texts[:len(capped) + 1])
