"""Token shards: flat `.bin` token ids + `.idx` document end offsets, and the reader for train/eval.

Layout (docs/architecture.md): `<split>-NNNNN.bin` holds little-endian uint16 ids (uint32 when the
vocabulary has 65,536 or more entries), every document followed by EOS; `<split>-NNNNN.idx` holds
little-endian uint64 end offsets (in tokens, EOS included) of the documents in that shard. A shard
closes before the document that would take it past `max_tokens` (a longer document gets a shard of
its own), so the shard layout depends only on the documents and their order.

Generations (issue 13, `append=true`): later generations add shards (manifest entries with
`"generation": g`, under shards/gen-<g:05d>/) and `retired/gen-<g:05d>-<split>.u64` lists of
split-wide document numbers they retire; shard files are never rewritten, the reader
(`TokenShards`) leaves retired documents out.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.atomic import atomic_open, atomic_write_bytes
from data_prep.errors import PrepError

IDX_DTYPE = np.dtype("<u8")


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype("<u2") if vocab_size < 65_536 else np.dtype("<u4")


def dtype_name(dtype: np.dtype) -> str:
    return {np.dtype("<u2"): "uint16", np.dtype("<u4"): "uint32"}[np.dtype(dtype)]


def split_of(doc_id: str, val_fraction: float) -> str:
    """'val' or 'train', from a hash of the document id only.

    The id alone decides, so adding or removing other documents never moves a document between
    splits, and every task/worker computes the same answer.
    """
    h = int.from_bytes(hashlib.sha256(doc_id.encode("utf-8")).digest()[:8], "big")
    return "val" if h < val_fraction * 2**64 else "train"


@dataclass
class ShardInfo:
    bin: str  # path relative to the manifest's folder
    idx: str
    tokens: int
    documents: int
    sha256: str  # of the .bin
    idx_sha256: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class ShardWriter:
    """Append documents (token arrays without EOS) to `<folder>/<prefix>-NNNNN.{bin,idx}`.

    Each shard's `.bin` is streamed to a temp file (`common.atomic`) that replaces the `.bin` when
    the shard closes, and its `.idx` is written atomically after it, so a killed run leaves only
    complete shards (and temp files, which are never read and are removed on restart).
    """

    def __init__(self, folder: Path, prefix: str, vocab_size: int, eos_id: int, max_tokens: int,
                 rel_to: Path | None = None, buffer_tokens: int = 1 << 20):
        if max_tokens < 1:
            raise ValueError("max_tokens must be positive")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.dtype = token_dtype(vocab_size)
        self.vocab_size = vocab_size
        self.eos = np.array([eos_id], dtype=self.dtype)
        self.max_tokens = max_tokens
        self.rel_to = Path(rel_to) if rel_to is not None else self.folder.parent
        self.buffer_tokens = buffer_tokens
        self.shards: list[ShardInfo] = []
        self._open = False

    # -- one shard at a time ------------------------------------------------------------------
    def _start(self) -> None:
        n = len(self.shards)
        self._bin = self.folder / f"{self.prefix}-{n:05d}.bin"
        self._idx = self.folder / f"{self.prefix}-{n:05d}.idx"
        self._bin_file = ExitStack()  # closing it commits the .bin (fsync + rename)
        self._f = self._bin_file.enter_context(atomic_open(self._bin, "wb"))
        self._hash = hashlib.sha256()
        self._ends: list[int] = []
        self._tokens = 0
        self._buf: list[np.ndarray] = []
        self._buf_len = 0
        self._open = True

    def _flush(self) -> None:
        if self._buf:
            data = np.concatenate(self._buf).tobytes()
            try:
                self._f.write(data)
            except BaseException as e:
                # Close the temp file with the error: common.atomic removes it and turns ENOSPC
                # into its one-line message (raised from __exit__); else the original goes on.
                self._open = False
                self._bin_file.__exit__(type(e), e, e.__traceback__)
                raise
            self._hash.update(data)
            self._buf, self._buf_len = [], 0

    def _finish(self) -> None:
        self._flush()
        self._bin_file.close()
        idx = np.asarray(self._ends, dtype=IDX_DTYPE).tobytes()
        atomic_write_bytes(self._idx, idx)
        self.shards.append(ShardInfo(
            bin=os.path.relpath(self._bin, self.rel_to), idx=os.path.relpath(self._idx, self.rel_to),
            tokens=self._tokens, documents=len(self._ends), sha256=self._hash.hexdigest(),
            idx_sha256=hashlib.sha256(idx).hexdigest()))
        self._open = False

    # -- public ---------------------------------------------------------------------------------
    def add(self, tokens: np.ndarray | list[int]) -> None:
        """Append one document; EOS is added after it."""
        arr = np.asarray(tokens)
        if arr.size and (arr.min() < 0 or arr.max() >= self.vocab_size):
            raise PrepError(f"token id out of range [0, {self.vocab_size}) in shard {self.prefix}")
        arr = arr.astype(self.dtype, copy=False)
        n = int(arr.size) + 1
        if self._open and self._tokens and self._tokens + n > self.max_tokens:
            self._finish()
        if not self._open:
            self._start()
        self._buf.append(arr)
        self._buf.append(self.eos)
        self._buf_len += n
        self._tokens += n
        self._ends.append(self._tokens)
        if self._buf_len >= self.buffer_tokens:
            self._flush()

    def add_many(self, docs: Iterable[np.ndarray | list[int]]) -> None:
        for d in docs:
            self.add(d)

    def add_batch(self, flat: np.ndarray, lengths: np.ndarray) -> None:
        """Append many documents at once: `flat` is their ids concatenated, `lengths` their sizes.

        Same result as `add` per document (shards close at the same places), vectorised: the
        tokenize stage calls it once per encode_batch.
        """
        lengths = np.asarray(lengths, dtype=np.int64)
        n = int(lengths.size)
        if n == 0:
            return
        if flat.size and (int(flat.min()) < 0 or int(flat.max()) >= self.vocab_size):
            raise PrepError(f"token id out of range [0, {self.vocab_size}) in shard {self.prefix}")
        ends = np.cumsum(lengths + 1)  # end of each document, EOS included, within this batch
        out = np.empty(int(ends[-1]), dtype=self.dtype)
        is_eos = np.zeros(out.size, dtype=bool)
        is_eos[ends - 1] = True
        out[is_eos] = self.eos[0]
        out[~is_eos] = flat
        done = 0
        while done < n:
            if not self._open:
                self._start()
            base = int(ends[done - 1]) if done else 0
            rel = ends[done:] - base
            fit = int(np.searchsorted(rel, self.max_tokens - self._tokens, side="right"))
            if fit == 0:
                if self._tokens:  # the next document does not fit: close this shard
                    self._finish()
                    continue
                fit = 1  # a document longer than a shard gets a shard of its own
            take = int(rel[fit - 1])
            self._buf.append(out[base:base + take])
            self._ends.extend((self._tokens + rel[:fit]).tolist())
            self._tokens += take
            self._buf_len += take
            done += fit
            if self._buf_len >= self.buffer_tokens:
                self._flush()
            if done < n:
                self._finish()

    def close(self) -> list[ShardInfo]:
        if self._open:
            self._finish()
        return self.shards

    def abort(self) -> None:
        """Drop the shard being written (its temp file is removed now, not at the next start)."""
        if self._open:
            self._open = False
            try:
                self._bin_file.__exit__(_Aborted, _Aborted(), None)
            except _Aborted:
                pass


class _Aborted(Exception):
    """Thrown into the open shard's temp file by `ShardWriter.abort`."""


@dataclass
class _Shard:
    bin: Path
    idx: Path
    tokens: int
    documents: int
    generation: int = 1
    _data: np.memmap | None = field(default=None, repr=False)
    _ends: np.ndarray | None = field(default=None, repr=False)

    def data(self, dtype: np.dtype) -> np.ndarray:
        if self._data is None:
            self._data = (np.memmap(self.bin, dtype=dtype, mode="r", shape=(self.tokens,))
                          if self.tokens else np.zeros(0, dtype=dtype))
        return self._data

    def ends(self) -> np.ndarray:
        if self._ends is None:
            self._ends = (np.memmap(self.idx, dtype=IDX_DTYPE, mode="r", shape=(self.documents,))
                          if self.documents else np.zeros(0, dtype=IDX_DTYPE))
        return self._ends

    def __getstate__(self):  # memmaps are reopened in each DataLoader worker
        d = dict(self.__dict__)
        d["_data"] = d["_ends"] = None
        return d


@dataclass(frozen=True)
class GenerationSpan:
    """Where one generation's live documents sit in a TokenShards view: [lo, hi) ranges of the
    view's token stream and document numbering (a generation's shards are consecutive)."""

    generation: int
    tokens: tuple[int, int]
    documents: tuple[int, int]


def manifest_generations(manifest: dict) -> list[int]:
    """The generation numbers of a prepared corpus; a manifest without `generations` has one (1)."""
    entries = manifest.get("generations") or [{"generation": 1}]
    return sorted(int(g["generation"]) for g in entries)


def _retired(manifest: dict, root: Path, manifest_path: Path, split: str, num_documents: int) -> np.ndarray:
    """Sorted unique split-wide document indices retired by any generation (contract: issue 13).

    Each file is checked against its manifest entry (size, sha256) and its content (sorted, unique,
    inside the split), so a truncated or foreign list fails here, naming it, instead of silently
    serving documents that were meant to be gone."""
    parts = []
    for g in manifest.get("generations") or []:
        entry = (g.get("retired") or {}).get(split)
        if not entry or not entry.get("file"):
            continue
        p = root / entry["file"]
        n = int(entry.get("documents", 0))
        where = f"(generation {g.get('generation')}'s retired {split} list in {manifest_path})"
        if not p.is_file():
            raise PrepError(f"{p}: retired-document file missing {where}; the corpus is incomplete, rerun data_prep")
        raw = p.read_bytes()
        if len(raw) != n * IDX_DTYPE.itemsize:
            raise PrepError(f"{p}: {len(raw)} bytes, manifest says {n * IDX_DTYPE.itemsize} ({n} documents) {where}; "
                            "the file is truncated or corrupt, rerun data_prep")
        if entry.get("sha256") and hashlib.sha256(raw).hexdigest() != entry["sha256"]:
            raise PrepError(f"{p}: sha256 differs from the manifest {where}; the file is corrupt, rerun data_prep")
        ids = np.frombuffer(raw, dtype=IDX_DTYPE)
        if ids.size and (np.any(np.diff(ids.astype(np.int64)) <= 0) or int(ids[-1]) >= num_documents):
            raise PrepError(f"{p}: not sorted unique document indices below {num_documents} {where}; "
                            "the file is corrupt, rerun data_prep")
        parts.append(ids.astype(np.int64))
    return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)


class TokenShards:
    """Random access to one split of a shard set, without loading it (numpy memmaps).

    >>> shards = TokenShards.from_manifest("runs/demo/data", split="train")
    >>> x = shards.window(1000, 2049)         # int64, may span shards
    >>> first = shards.document(0)             # with its trailing EOS
    >>> new = TokenShards.from_manifest("runs/demo/data", "train", generations=[2])

    A corpus with several generations (`append=true`, docs/data_prep.md) is served as its *live*
    documents only: retired documents are cut out and the live ones form one contiguous token
    stream. The view is a list of segments, each a run of consecutive live documents of one
    shard, so memory grows with the number of shards and retired documents, never with tokens;
    `window`, `document`, `documents`, `document_lengths`, `num_tokens` and `num_documents` all
    see this stream. A corpus without retirements has one segment per shard: exactly the shards.
    """

    def __init__(self, shards: list[_Shard], dtype: np.dtype, eos_id: int, vocab_size: int,
                 manifest: dict | None = None, segments: list[tuple[int, int, int, int, int]] | None = None):
        """`segments`: (shard position in `shards`, first document, end document, first token,
        end token) within that shard, in stream order; None = every shard whole."""
        self._shards = shards
        self.dtype = np.dtype(dtype)
        self.eos_id = eos_id
        self.vocab_size = vocab_size
        self.manifest = manifest or {}
        if segments is None:
            segments = [(k, 0, s.documents, 0, s.tokens) for k, s in enumerate(shards) if s.documents]
        self._seg_shard = [k for k, *_ in segments]
        self._seg_doc0 = [d0 for _, d0, _, _, _ in segments]
        self._seg_tok0 = [t0 for _, _, _, t0, _ in segments]
        self._tok_starts = np.cumsum([0] + [t1 - t0 for *_, t0, t1 in segments]).tolist()
        self._doc_starts = np.cumsum([0] + [d1 - d0 for _, d0, d1, _, _ in segments]).tolist()
        self.generations = sorted({s.generation for s in shards})
        self.retired_documents = 0  # retired documents of these shards that the view leaves out

    @classmethod
    def from_manifest(cls, path: str | Path, split: str = "train",
                      generations: Iterable[int] | None = None) -> TokenShards:
        """The live documents of `split`; `generations` (e.g. [2]) keeps only the documents those
        generations wrote, still with every generation's retirements applied."""
        path = Path(path)
        manifest_path = path / "manifest.json" if path.is_dir() else path
        if not manifest_path.is_file():
            raise PrepError(f"{manifest_path}: no manifest.json; run `python -m data_prep ... out_dir={path}` first")
        with open(manifest_path, encoding="utf-8") as f:
            manifest = json.load(f)
        root = manifest_path.parent
        if split not in manifest.get("splits", {}):
            raise PrepError(f"{manifest_path}: no split {split!r} (has: {', '.join(manifest.get('splits', {}))})")
        dtype = np.dtype({"uint16": "<u2", "uint32": "<u4"}[manifest["dtype"]])
        have = manifest_generations(manifest)
        wanted = set(have) if generations is None else {int(g) for g in generations}
        if wanted - set(have):
            raise PrepError(f"{manifest_path}: no generation {', '.join(map(str, sorted(wanted - set(have))))} "
                            f"(has: {', '.join(map(str, have))})")
        listed = manifest["splits"][split]["shards"]
        doc_base = np.cumsum([0] + [int(s["documents"]) for s in listed]).tolist()
        retired = _retired(manifest, root, manifest_path, split, doc_base[-1])
        shards: list[_Shard] = []
        segments: list[tuple[int, int, int, int, int]] = []
        cut = 0
        for i, s in enumerate(listed):
            if int(s.get("generation", 1)) not in wanted:
                continue
            sh = _Shard(root / s["bin"], root / s["idx"], int(s["tokens"]), int(s["documents"]),
                        int(s.get("generation", 1)))
            for p, expected in ((sh.bin, sh.tokens * dtype.itemsize), (sh.idx, sh.documents * IDX_DTYPE.itemsize)):
                if not p.is_file():
                    raise PrepError(f"{p}: shard file missing (listed in {manifest_path}); rerun data_prep")
                if p.stat().st_size != expected:
                    raise PrepError(f"{p}: {p.stat().st_size} bytes, manifest says {expected}; "
                                    f"the shard set is incomplete or corrupt, rerun data_prep")
            k = len(shards)
            shards.append(sh)
            lo, hi = np.searchsorted(retired, [doc_base[i], doc_base[i + 1]])
            gone = (retired[lo:hi] - doc_base[i]).tolist()  # this shard's retired documents, local numbers
            cut += len(gone)
            ends = sh.ends() if gone else None
            first = 0
            for stop in [*gone, sh.documents]:  # live runs between retired documents
                if stop > first:
                    segments.append((k, first, stop, int(ends[first - 1]) if first else 0,
                                     int(ends[stop - 1]) if ends is not None else sh.tokens))
                first = stop + 1
        tok = manifest["tokenizer"]
        view = cls(shards, dtype, int(tok["eos_id"]), int(tok["vocab_size"]), manifest, segments)
        view.retired_documents = cut
        return view

    @property
    def num_tokens(self) -> int:
        return int(self._tok_starts[-1])

    @property
    def num_documents(self) -> int:
        return int(self._doc_starts[-1])

    @property
    def num_shards(self) -> int:
        return len(self._shards)

    def __len__(self) -> int:
        return self.num_tokens

    def window(self, start: int, length: int) -> np.ndarray:
        """Tokens [start, start + length) of the (live) stream as int64, across shard and segment boundaries."""
        if start < 0 or length < 0 or start + length > self.num_tokens:
            raise IndexError(f"window [{start}, {start + length}) outside [0, {self.num_tokens})")
        out = np.empty(length, dtype=np.int64)
        pos, filled = start, 0
        k = bisect.bisect_right(self._tok_starts, pos) - 1
        while filled < length:
            shard = self._shards[self._seg_shard[k]]
            off = pos - self._tok_starts[k]
            take = min(length - filled, self._tok_starts[k + 1] - pos)
            lo = self._seg_tok0[k] + off
            out[filled:filled + take] = shard.data(self.dtype)[lo:lo + take]
            filled += take
            pos += take
            k += 1
        return out

    def document(self, i: int) -> np.ndarray:
        """Live document `i` of the split (int64), with its trailing EOS."""
        if not 0 <= i < self.num_documents:
            raise IndexError(f"document {i} outside [0, {self.num_documents})")
        k = bisect.bisect_right(self._doc_starts, i) - 1
        shard = self._shards[self._seg_shard[k]]
        j = self._seg_doc0[k] + i - self._doc_starts[k]
        ends = shard.ends()
        lo = int(ends[j - 1]) if j else 0
        return np.asarray(shard.data(self.dtype)[lo:int(ends[j])], dtype=np.int64)

    def _segments(self) -> Iterator[tuple[_Shard, int, int]]:
        for k, shard_pos in enumerate(self._seg_shard):
            yield self._shards[shard_pos], self._seg_doc0[k], self._seg_doc0[k] + self._doc_starts[k + 1] - self._doc_starts[k]

    def documents(self) -> Iterator[np.ndarray]:
        for shard, d0, d1 in self._segments():
            data, ends = shard.data(self.dtype), shard.ends()
            lo = int(ends[d0 - 1]) if d0 else 0
            for e in ends[d0:d1]:
                e = int(e)
                yield np.asarray(data[lo:e], dtype=np.int64)
                lo = e

    def document_lengths(self) -> np.ndarray:
        """Token count of every live document (EOS included), int64."""
        parts = []
        for shard, d0, d1 in self._segments():
            ends = shard.ends()[max(d0 - 1, 0):d1].astype(np.int64)
            parts.append(np.diff(np.concatenate([[0], ends])) if d0 == 0 else np.diff(ends))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def generation_spans(self) -> list[GenerationSpan]:
        """Each generation's [lo, hi) range of this view's tokens and documents (stream order)."""
        spans: list[GenerationSpan] = []
        for k, shard_pos in enumerate(self._seg_shard):
            g = self._shards[shard_pos].generation
            t, d = (self._tok_starts[k], self._tok_starts[k + 1]), (self._doc_starts[k], self._doc_starts[k + 1])
            if spans and spans[-1].generation == g and spans[-1].tokens[1] == t[0]:
                t, d = (spans[-1].tokens[0], t[1]), (spans[-1].documents[0], d[1])
                spans.pop()
            spans.append(GenerationSpan(g, (int(t[0]), int(t[1])), (int(d[0]), int(d[1]))))
        return spans
