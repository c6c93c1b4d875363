"""Vocabulary tables for the hybrid embedding: characters and word-boundary flags per token id.

`model/` never reads tokenizer files: the caller decodes the vocabulary (index = id) and passes the
strings here. Two spelling schemes are understood:
- byte-level BPE (GPT-2, our tokenizer): a word-initial token decodes with a leading space
  (" azole"), so `starts_word` is set and `ends_word` is left to the next token;
- fairseq BPE (BioGPT's dict.txt): a word-continuing token ends with "@@" ("chlor@@"), so
  `ends_word` is set for every token without it;
- end-of-word BPE (Hugging Face's BioGptTokenizer vocab.json, XLM): a word-final token ends with
  "</w>" ("enyl</w>"), which sets `ends_word`.
A boundary falls between positions t-1 and t iff ends_word[x[t-1]] or starts_word[x[t]].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

CHAR_PAD = 0  # character id 0 pads short entries; byte b is stored as b + 1
CHAR_VOCAB = 257
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>")
_SPACE_MARKS = (" ", "\u0120", "\u2581")  # decoded space, GPT-2's "Ġ", SentencePiece's "▁"


@dataclass
class VocabTables:
    chars: torch.Tensor  # (V, L) int64 byte ids + 1, 0 = padding
    starts_word: torch.Tensor  # (V,) bool
    ends_word: torch.Tensor  # (V,) bool

    def __post_init__(self) -> None:
        V = self.chars.shape[0]
        if self.starts_word.shape != (V,) or self.ends_word.shape != (V,):
            raise ValueError(f"vocab tables: flags must have shape ({V},), got "
                             f"{tuple(self.starts_word.shape)} and {tuple(self.ends_word.shape)}")


def vocab_tables(tokens: Sequence[str], max_chars: int = 16, scheme: str = "auto",
                 special_tokens: Sequence[str] = SPECIAL_TOKENS, continuation: str = "@@",
                 word_end: str = "</w>") -> VocabTables:
    """Turn decoded token strings (index = id) into the tables the hybrid embedding keeps.

    scheme: "bpe_space" (leading space starts a word), "fairseq" (trailing `continuation` continues
    a word), "end_of_word" (trailing `word_end` ends a word) or "auto" (fairseq when any token ends
    with `continuation`, end_of_word when any ends with `word_end`, else bpe_space). Special tokens and
    whitespace-only tokens are words of their own. Characters are the UTF-8 bytes of the token
    without its boundary marks, truncated to `max_chars`.
    """
    if not tokens:
        raise ValueError("vocab_tables: the token list is empty; pass the decoded vocabulary (index = id)")
    if scheme == "auto":
        scheme = ("fairseq" if any(t.endswith(continuation) for t in tokens)
                  else "end_of_word" if any(t.endswith(word_end) for t in tokens) else "bpe_space")
    if scheme not in ("bpe_space", "fairseq", "end_of_word"):
        raise ValueError(f"vocab_tables: scheme={scheme!r} must be 'auto', 'bpe_space', 'fairseq' or 'end_of_word'")
    specials = set(special_tokens)
    V = len(tokens)
    chars = torch.zeros(V, max_chars, dtype=torch.long)
    starts = torch.zeros(V, dtype=torch.bool)
    ends = torch.zeros(V, dtype=torch.bool)
    for i, tok in enumerate(tokens):
        if not isinstance(tok, str):
            raise ValueError(f"vocab_tables: token {i} is {type(tok).__name__}, expected a decoded string")
        text = tok
        if tok in specials or not tok.strip():
            starts[i] = ends[i] = True
        elif scheme == "bpe_space":
            starts[i] = tok.startswith(_SPACE_MARKS)
            text = tok[1:] if starts[i] else tok
        elif scheme == "fairseq":
            ends[i] = not tok.endswith(continuation)
            text = tok if ends[i] else tok[: -len(continuation)]
        else:
            ends[i] = tok.endswith(word_end)
            text = tok[: -len(word_end)] if ends[i] else tok
        raw = text.encode("utf-8")[:max_chars]
        if raw:
            chars[i, : len(raw)] = torch.tensor(list(raw), dtype=torch.long) + 1
    return VocabTables(chars=chars, starts_word=starts, ends_word=ends)
