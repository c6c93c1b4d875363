"""tiktoken as a faster encoder for data_prep's own byte-level BPE, giving the same ids.

tiktoken (an independent BPE implementation, 3.3-3.7x as fast as `Tokenizer.encode_batch` on the same
texts in benchmarks/bench_tokenize.py) produces the ids of a `tokenizers` BPE when it is given
  - the same vocabulary as ranks, rank = id, which orders merges as `tokenizers` does only when
    every merge's result has a higher id than the previous merge's (BpeTrainer numbers them so),
  - GPT-2's pre-tokenisation regex (what `pre_tokenizers.ByteLevel(use_regex=True)` splits with),
  - the text the BPE model sees: NFC-normalised, with the space `add_prefix_space` puts in front of
    a text that does not start with one.
`tiktoken_encoding` checks from the tokenizer's JSON that it has exactly the shape
`tokenizer.new_bpe_tokenizer` + BpeTrainer make, else says why not (a pretrained tokenizer
usually differs). The checks are necessary, not sufficient (tiktoken would also merge two
adjacent tokens that concatenate to a vocabulary entry made by another merge), so the shard stage
also compares a sample with `tokenizers` before trusting it (pipeline/stage_tokenize.py).

`FastEncoder` sends to `tokenizers` the few texts whose ids it could not guarantee:
  - a text containing an added token's string (`</s>`, `<pad>`...): `tokenizers` splits those out
    as their ids even with add_special_tokens=False, and prefixes a space to each piece around them;
  - a non-ASCII text with a code point unassigned in Unicode 3.2 (newer scripts and combining marks,
    emoji, all astral characters) or a lone surrogate: Python's NFC tables (Unicode 14 in 3.11) and
    the Rust ones in `tokenizers` differ on characters assigned since, and their regex engines'
    Unicode classes may too; characters assigned by 3.2 normalise alike in every later version
    (Unicode's normalisation stability policy). A lone surrogate makes `tokenizers` raise where
    tiktoken would silently replace it, so the caller sees the same error either way.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import unicodedata
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from tokenizers import Tokenizer

if TYPE_CHECKING:
    import tiktoken

# GPT-2's pre-tokenisation regex: what `pre_tokenizers.ByteLevel(use_regex=True)` splits with.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# U+F951: a CJK compatibility ideograph whose decomposition Unicode corrected after 3.2
# (NormalizationCorrections.txt; the other five corrected ones are astral, risky anyway).
_CORRECTED_SINCE_3_2 = (0xF951,)


def byte_level_decoder() -> dict[str, int]:
    """Inverse of GPT-2's bytes_to_unicode: the character byte-level BPE writes for each byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs, strict=True)}


def tiktoken_available() -> bool:
    return importlib.util.find_spec("tiktoken") is not None


def _merge_pairs(merges: list) -> list[tuple[str, str]]:
    # tokenizers >= 0.20 writes [a, b]; older files "a b" (byte-level pieces never hold a space).
    return [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]


def _ranks_or_reason(tok: Tokenizer) -> tuple[dict[bytes, int] | None, str]:
    """tiktoken's mergeable ranks for `tok`, or (None, why `tok` is not data_prep's byte-level BPE)."""
    d = json.loads(tok.to_str())
    if d.get("truncation") is not None or d.get("padding") is not None:
        return None, "it truncates or pads its encodings"
    if d.get("normalizer") != {"type": "NFC"}:
        return None, f"its normalizer is {json.dumps(d.get('normalizer'))}, not NFC alone"
    pre = d.get("pre_tokenizer") or {}
    if pre.get("type") != "ByteLevel" or pre.get("add_prefix_space") is not True or pre.get("use_regex") is not True:
        return None, (f"its pre_tokenizer is {json.dumps(pre or None)}, not ByteLevel(add_prefix_space=true, "
                      "use_regex=true)")
    post = d.get("post_processor")
    if post is not None and post.get("type") != "ByteLevel":  # ByteLevel's only moves offsets
        return None, f"its post_processor is {post.get('type')}"
    m = d.get("model") or {}
    if m.get("type") != "BPE":
        return None, f"its model is {m.get('type')}, not BPE"
    for key in ("dropout", "continuing_subword_prefix", "end_of_word_suffix", "byte_fallback", "ignore_merges"):
        if m.get(key):
            return None, f"its BPE model sets {key}={json.dumps(m[key])}"
    added = {a["content"] for a in d.get("added_tokens", [])}
    if "" in added:
        return None, "it has an empty added token"
    vocab: dict[str, int] = m.get("vocab") or {}
    if len(set(vocab.values())) != len(vocab):
        return None, "two vocabulary entries share an id"
    dec = byte_level_decoder()
    missing = [c for c in dec if c not in vocab]
    if missing:
        return None, f"its vocabulary lacks {len(missing)} of the 256 byte-level characters (e.g. {missing[0]!r})"
    known = set(dec)  # what the BPE model can produce: bytes, then each merge's result
    prev_id = -1
    for i, (a, b) in enumerate(_merge_pairs(m.get("merges") or [])):
        result_id = vocab.get(a + b)
        if a not in known or b not in known or result_id is None:
            return None, f"merge {i} ({a!r}, {b!r}) joins pieces that are not earlier bytes/merges of its vocabulary"
        if result_id <= prev_id:
            return None, (f"merge {i} makes id {result_id}, not above the previous merge's {prev_id}: ranks = ids "
                          "would order the merges differently")
        prev_id = result_id
        known.add(a + b)
    stray = [s for s in vocab if s not in known and s not in added]
    if stray:
        return None, f"vocabulary entry {stray[0]!r} is neither a byte, a merge result nor an added token"
    return {bytes(dec[c] for c in s): vocab[s] for s in known}, ""


def qualification(tok: Tokenizer) -> str | None:
    """None when tiktoken can encode for `tok` (installed, and `tok` has the right shape), else why not."""
    if not tiktoken_available():
        return "tiktoken is not installed (pip install tiktoken)"
    _, reason = _ranks_or_reason(tok)
    return reason or None


def tiktoken_encoding(tok: Tokenizer, name: str = "data_prep_bpe") -> tuple[tiktoken.Encoding | None, str]:
    """(the same BPE as a tiktoken Encoding, "") when `tok` is data_prep's byte-level BPE and tiktoken
    is installed, else (None, the reason). Added tokens are left out: encode_ordinary never makes them."""
    if not tiktoken_available():
        return None, "tiktoken is not installed (pip install tiktoken)"
    ranks, reason = _ranks_or_reason(tok)
    if ranks is None:
        return None, reason
    import tiktoken

    return tiktoken.Encoding(name, pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens={}), ""


@functools.cache
def _risky_class() -> str:
    """A regex character class: code points unassigned in Unicode 3.2 (all astral ones included,
    so only the BMP is scanned here), surrogates, and the decompositions corrected since."""
    old = unicodedata.ucd_3_2_0
    risky = [c for c in range(0x10000) if old.category(chr(c)) in ("Cn", "Cs") or c in _CORRECTED_SINCE_3_2]
    ranges: list[list[int]] = []
    for c in risky:
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    body = "".join(f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}" for a, b in ranges)
    return f"[{body}\\U00010000-\\U0010ffff]"


def cores() -> int:
    """CPUs this process may run on (its affinity mask, e.g. a Slurm allocation), not the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


class FastEncoder:
    """`tok.encode_batch(texts, add_special_tokens=False)` ids, computed by tiktoken in `threads`
    threads (tiktoken releases the GIL while it encodes); the texts it cannot vouch for go to `tok`.
    Build it with `FastEncoder.build`; close it (or use `with`) to stop its threads."""

    def __init__(self, tok: Tokenizer, encoding: tiktoken.Encoding, threads: int):
        self.tok = tok
        self.encoding = encoding
        self.threads = max(1, threads)
        added = sorted({a.content for a in tok.get_added_tokens_decoder().values()}, key=len, reverse=True)
        alternation = "|".join(map(re.escape, added))
        self._special = re.compile(alternation) if added else None
        self._risky_or_special = re.compile(_risky_class() + (f"|{alternation}" if added else ""))
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="tiktoken") if self.threads > 1 else None

    @classmethod
    def build(cls, tok: Tokenizer, threads: int) -> tuple[FastEncoder | None, str]:
        """(encoder, "") or (None, why tiktoken cannot stand in for `tok`)."""
        encoding, reason = tiktoken_encoding(tok)
        return (cls(tok, encoding, threads), "") if encoding is not None else (None, reason)

    def prepared(self, text: str) -> str | None:
        """What tiktoken must encode for `text` (what the HF pipeline hands its BPE model), or None
        when `text` must go to `tokenizers`."""
        if text.isascii():  # O(1) in CPython; ASCII is NFC already
            if self._special is not None and self._special.search(text):
                return None
        else:
            if self._risky_or_special.search(text):
                return None
            normal = unicodedata.normalize("NFC", text)
            if normal != text and self._special is not None and self._special.search(normal):
                return None  # an added token with normalized=true would match here
            text = normal
        # ByteLevel(add_prefix_space=True) prepends a space unless the text starts with one; an
        # empty text stays empty (no ids).
        return text if not text or text[0] == " " else " " + text

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """The ids of each text, as `tok.encode_batch(texts, add_special_tokens=False)` gives them."""
        prepared = [self.prepared(t) for t in texts]
        out: list[list[int] | None] = [None] * len(texts)
        fast = [(i, p) for i, p in enumerate(prepared) if p is not None]
        if fast:
            for (i, _), ids in zip(fast, self._encode_plain([p for _, p in fast]), strict=True):
                out[i] = ids
        slow = [i for i, p in enumerate(prepared) if p is None]
        if slow:
            for i, enc in zip(slow, self.tok.encode_batch([texts[i] for i in slow], add_special_tokens=False),
                              strict=True):
                out[i] = enc.ids
        return out  # type: ignore[return-value]

    def _encode_plain(self, texts: list[str]) -> list[list[int]]:
        one = self.encoding.encode_ordinary
        if self._pool is None or len(texts) < 2:
            return [one(t) for t in texts]
        # A few contiguous chunks per thread, not one task per text: tiktoken's own
        # encode_ordinary_batch submits a future per text, and that Python overhead (GIL-bound)
        # cost ~40% of its time on 1,024-abstract batches.
        n = -(-len(texts) // (4 * self.threads))
        chunks = [texts[i:i + n] for i in range(0, len(texts), n)]
        return [ids for part in self._pool.map(lambda c: [one(t) for t in c], chunks) for ids in part]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> FastEncoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
