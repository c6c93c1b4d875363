"""Byte-level BPE tokenizer: train one on the cleaned corpus, or load an existing `tokenizer.json`.

The special tokens have fixed ids (`<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3, as in BioGPT/fairseq)
because train/ and eval/ rely on them. The normaliser is NFC only (clean.py already did the
scientific Unicode work) and the pre-tokeniser is byte-level with `add_prefix_space`, so every
word-initial token decodes with a leading space: the model's hybrid embedding reads word
boundaries from that.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from omegaconf import MISSING
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from common.atomic import atomic_write_bytes
from data_prep.errors import PrepError

SPECIAL_TOKENS: tuple[str, ...] = ("<s>", "<pad>", "</s>", "<unk>")
BOS_ID, PAD_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
BIOGPT_VOCAB_SIZE = 42_384


@dataclass
class TokenizerConfig:
    """Base of the `conf/tokenizer/*.yaml` schemas; `kind` says which one (set by the group)."""

    kind: str = MISSING


@dataclass
class BpeTokenizerConfig(TokenizerConfig):
    """`tokenizer=bpe`: train a byte-level BPE on the cleaned corpus (train split, hash sample)."""

    kind: str = "bpe"
    vocab_size: int = BIOGPT_VOCAB_SIZE
    min_frequency: int = 2
    max_train_docs: int = 2_000_000  # a deterministic hash sample of train documents
    # A 42,384-entry vocabulary is full long before 300 MB, and BpeTrainer is sequential (2 GB took
    # ~11 min): more text would cost time, not quality.
    max_train_bytes: int = 300_000_000


@dataclass
class PretrainedTokenizerConfig(TokenizerConfig):
    """`tokenizer=pretrained tokenizer.path=...`: load a tokenizers JSON (its special ids are checked)."""

    kind: str = "pretrained"
    path: str = MISSING


TOKENIZER_SCHEMAS: dict[str, type[TokenizerConfig]] = {"bpe": BpeTokenizerConfig,
                                                       "pretrained": PretrainedTokenizerConfig}


def new_bpe_tokenizer() -> Tokenizer:
    """An untrained byte-level BPE with the project's normaliser, pre-tokeniser and decoder."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    return tok


def train_bpe(texts: Iterable[str], vocab_size: int, min_frequency: int = 2, length: int | None = None,
              show_progress: bool = False) -> Tokenizer:
    """Train on `texts`. Deterministic for the same texts in the same order."""
    tok = new_bpe_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),  # added first, so they get ids 0..3
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte is encodable: no <unk> needed
        show_progress=show_progress,
    )
    tok.train_from_iterator(texts, trainer=trainer, length=length)
    check_special_ids(tok, "trained tokenizer")
    return tok


def check_special_ids(tok: Tokenizer, what: str) -> None:
    for expected, token in enumerate(SPECIAL_TOKENS):
        got = tok.token_to_id(token)
        if got != expected:
            raise PrepError(
                f"{what}: special token {token} has id {got}, expected {expected} "
                f"(<s>=0, <pad>=1, </s>=2, <unk>=3 are fixed; retrain or fix the tokenizer file)"
            )


def load_tokenizer(path: str | Path) -> Tokenizer:
    path = Path(path)
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as e:  # tokenizers raises a bare Exception with a serde message
        raise PrepError(f"{path}: not a readable tokenizer.json ({e}); pass a `tokenizers` JSON file") from e
    check_special_ids(tok, str(path))
    return tok


def tokenizer_json(tok: Tokenizer) -> str:
    # Stable serialisation: the hash in the manifest must be the same for the same tokenizer.
    return tok.to_str(pretty=True)


def save_tokenizer(tok: Tokenizer, path: str | Path) -> str:
    """Write atomically; return the sha256 of the file's bytes."""
    data = tokenizer_json(tok).encode("utf-8")
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def vocab_strings(tok: Tokenizer) -> list[str]:
    """Decoded token strings, index = id (what model.embedding.vocab_tables expects)."""
    n = tok.get_vocab_size()
    out = []
    for i in range(n):
        piece = tok.id_to_token(i)
        out.append(piece if piece in SPECIAL_TOKENS else tok.decode([i], skip_special_tokens=False))
    return out


def tokenizer_info(tok: Tokenizer, sha256: str, rel_path: str = "tokenizer/tokenizer.json") -> dict:
    return {"path": rel_path, "sha256": sha256, "vocab_size": tok.get_vocab_size(),
            "bos_id": BOS_ID, "pad_id": PAD_ID, "eos_id": EOS_ID, "unk_id": UNK_ID}
