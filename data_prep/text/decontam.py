"""Remove evaluation documents (PubMedQA, BC5CDR, DDI, KD-DTI, HoC, ...) from the training corpus.

Two kinds of evidence, both exact-set lookups:

- **PMID**: every eval set that names its PubMed ids (PubMedQA, BC5CDR, KD-DTI, PMID lists) removes
  the documents with those PMIDs, PubMed abstracts and PMC full texts alike (`doc.pmid`).
- **Text**: sets without PMIDs (DDI's DrugBank/MedLine ids, HoC's bare sentences) and documents
  without a PMID (publisher JATS) are matched by word 13-gram overlap: a document matches an eval
  unit (an abstract, or a HoC sentence) when it contains at least `min_overlap` of that unit's
  distinct 13-grams. Words are `\\w+` runs of the casefolded, `normalize_text`-ed text, so HoC's
  pre-tokenised "breaks , alkali-labile" matches the original "breaks, alkali-labile". A whole
  copied abstract matches ~100 % of its 13-grams; an unrelated abstract that shares a boilerplate
  phrase matches a few per cent, so 0.5 separates them with a wide margin. Units shorter than 13
  words cannot be matched by text (they are counted in the summary).

`load_eval_sets(cfg) -> EvalIndex`; `EvalIndex.match(doc)` gives `"eval:<name>"` or None and
records what it removed; `EvalIndex.summary()` is what the manifest lists. Why each choice was
made is in docs/cleaning.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import tarfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from common.config import ConfigError
from data_prep.document import Document
from data_prep.errors import InputFileError
from data_prep.text.clean import normalize_text

EVAL_ENV = "BIOGPT_EVAL_DATA"
# Eval file formats and, for a directory path, which files in it are read.
FORMAT_GLOBS: dict[str, tuple[str, ...]] = {
    "pubmedqa": ("*.json",),  # {pmid: {QUESTION, CONTEXTS, LONG_ANSWER, ...}} or {pmid: "yes"}
    "pubmedqa_json": ("*.json",),  # the same format under its explicit name
    "bc5cdr": ("*.json", "*.PubTator.txt"),  # BioGPT raw {pmid: {title, abstract}} or PubTator
    "ddi": ("*.json",),  # {"DDI-MedLine.d1": {abstract, pmid: "DDI-..."}}: no PMIDs, text only
    "kd_dti": ("*.json",),  # {pmid: {title, abstract, pmid}}
    "hoc": ("*.tsv",),  # "sentence<TAB>labels" lines: no PMIDs, text only
    # NCBI-disease test: its PubTator file, or the spyysalo/ncbi-disease archive (test member read)
    "ncbi_disease": ("*.tar.gz", "*.txt"),
    "pmid_list": ("*.txt",),  # one PMID per line ("123" or "pmid:123"), "#" comments
}
# What BIOGPT_EVAL_DATA (or decontam.eval_dir) must contain when no sources are listed: the
# layout of ../shared/data, all splits (train/dev included: see docs/cleaning.md).
DEFAULT_SOURCES: dict[str, tuple[str, str]] = {
    "pubmedqa": ("pubmedqa", "pubmedqa"),
    "bc5cdr": ("biogpt/BC5CDR/raw", "bc5cdr"),
    "ddi": ("biogpt/DDI/raw", "ddi"),
    "kd_dti": ("biogpt/KD-DTI/raw", "kd_dti"),
    "hoc": ("biogpt/HoC/raw", "hoc"),
    "ncbi_disease": ("corpus/raw/spyysalo+ncbi-disease.tar.gz", "ncbi_disease"),
}
_WORD = re.compile(r"\w+")
_PMID = re.compile(r"(?:pmid:)?(\d+)$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class EvalSource:
    name: str
    path: str
    format: str


def _env_eval_dir() -> str | None:
    return os.environ.get(EVAL_ENV) or None


@dataclass
class DecontamConfig:
    """`cfg.decontam`. With no `sources`, the standard layout under `eval_dir` is used."""

    enabled: bool = True
    # Folder laid out like ../shared/data (DEFAULT_SOURCES); default $BIOGPT_EVAL_DATA; null: none.
    eval_dir: str | None = field(default_factory=_env_eval_dir)
    # null: DEFAULT_SOURCES under eval_dir (if any). Else {name: path} (the name is the format) or
    # {name: {path: ..., format: ...}}; a relative path is taken from eval_dir.
    sources: dict[str, Any] | None = None
    match_pmid: bool = True
    match_text: bool = True
    ngram: int = 13
    min_overlap: float = 0.5

    def listed_sources(self, section: str = "decontam") -> list[EvalSource] | None:
        """`sources` as EvalSource records (None when not set); a malformed entry raises ConfigError."""
        if self.sources is None:
            return None
        return list(_parse_sources(self.sources, f"{section}.sources"))

    def resolved_sources(self, section: str = "decontam", extra: Sequence[EvalSource] = ()
                         ) -> list[tuple[EvalSource, Path, str]]:
        """(source, absolute path, config key naming it); raises ConfigError for a missing path.

        `extra` sources (the demo source adds its own PubMedQA-style set) come after the configured
        ones, unless one of that name is configured already."""
        base = Path(self.eval_dir).expanduser() if self.eval_dir else None
        if base is not None and not base.is_dir():
            origin = f" (from ${EVAL_ENV})" if self.eval_dir == _env_eval_dir() else ""
            raise ConfigError(f"{section}.eval_dir", f"{base}{origin} is not a directory; fix the path or unset it")
        listed = self.listed_sources(section)
        if listed is None:
            sources = [EvalSource(n, p, f) for n, (p, f) in DEFAULT_SOURCES.items()] if base is not None else []
        else:
            sources = listed
        sources += [e for e in extra if all(s.name != e.name for s in sources)]
        out = []
        for s in sources:
            key = f"{section}.sources.{s.name}.path"
            p = Path(s.path).expanduser()
            if not p.is_absolute() and base is not None:
                p = base / p
            if not p.exists():
                hint = (f"; eval_dir {base} lacks the standard layout, list decontam.sources explicitly"
                        if listed is None and s not in extra else "")
                raise ConfigError(key, f"{p} does not exist{hint}")
            out.append((s, p, key))
        return out


def _parse_sources(value: Any, key: str) -> tuple[EvalSource, ...]:
    """`{name: path}` (the name is the format) or `{name: {path: ..., format: ...}}`."""
    if not isinstance(value, Mapping):
        raise ConfigError(key, f"must map a set name to a path or to {{path, format}}, got {value!r}")
    out = []
    for name, spec in value.items():
        k = f"{key}.{name}"
        if isinstance(spec, str):
            path, fmt = spec, str(name)
        elif isinstance(spec, Mapping):
            extra = sorted(set(spec) - {"path", "format"})
            if extra:
                raise ConfigError(f"{k}.{extra[0]}", "unknown key; allowed: path, format")
            if not isinstance(spec.get("path"), str):
                raise ConfigError(f"{k}.path", f"is required: a file or folder, got {spec.get('path')!r}")
            path, fmt = spec["path"], spec.get("format", name)
        else:
            raise ConfigError(k, f"must be a path or {{path, format}}, got {spec!r}")
        if fmt not in FORMAT_GLOBS:
            where = f"{k}.format" if isinstance(spec, Mapping) else k
            raise ConfigError(where, f"unknown eval format {fmt!r}; one of {', '.join(FORMAT_GLOBS)}")
        out.append(EvalSource(str(name), path, str(fmt)))
    return tuple(out)


# ---- reading eval files ------------------------------------------------------------------------


@dataclass(slots=True)
class EvalUnit:
    """One eval document (or HoC sentence): its PMID when known and its text."""

    pmid: int | None
    text: str


def _pmid(value: Any) -> int | None:
    m = _PMID.match(str(value).strip()) if value is not None else None
    return int(m.group(1)) if m else None


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputFileError(path, f"is not valid JSON ({e}); re-copy the eval file") from None


def _json_units(path: Path) -> Iterator[EvalUnit]:
    """The dict-keyed-by-id JSON of PubMedQA and BioGPT's raw BC5CDR/DDI/KD-DTI files."""
    data = _read_json(path)
    if not isinstance(data, dict):
        raise InputFileError(path, "expected a JSON object keyed by document id")
    for key, item in data.items():
        pmid = _pmid(key)
        parts: list[str] = []
        if isinstance(item, dict):
            pmid = pmid if pmid is not None else _pmid(item.get("pmid"))
            for k in ("title", "abstract"):
                if isinstance(item.get(k), str):
                    parts.append(item[k])
            ctx = item.get("CONTEXTS")
            if isinstance(ctx, list):
                parts.extend(c for c in ctx if isinstance(c, str))
            if isinstance(item.get("LONG_ANSWER"), str):
                parts.append(item["LONG_ANSWER"])
        yield EvalUnit(pmid, "\n\n".join(parts))


def _pubtator_units(path: Path, lines: Iterable[str] | None = None) -> Iterator[EvalUnit]:
    docs: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") if lines is None else contextlib.nullcontext(lines) as f:
        for line in f:
            head, sep, rest = line.partition("|")
            if sep and rest[:2] in ("t|", "a|") and head.isdigit():
                docs.setdefault(head, []).append(rest[2:].strip())
    if not docs:
        raise InputFileError(path, "no 'PMID|t|' or 'PMID|a|' lines: not a PubTator file")
    for pmid, parts in docs.items():
        yield EvalUnit(int(pmid), "\n\n".join(parts))


def _hoc_units(path: Path) -> Iterator[EvalUnit]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                cols = line.rstrip("\n").split("\t")
                # BioGPT: "sentence<TAB>labels"; BLURB-style files put an id column first
                text = cols[1] if len(cols) >= 3 else cols[0]
                yield EvalUnit(None, text)


def _pmid_list_units(path: Path) -> Iterator[EvalUnit]:
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            s = line.split("#", 1)[0].strip()
            if not s:
                continue
            pmid = _pmid(s)
            if pmid is None:
                raise InputFileError(path, f"line {n} ({s!r}) is not a PMID; expected one number per line")
            yield EvalUnit(pmid, "")


def _ncbi_test_units(path: Path) -> Iterator[EvalUnit]:
    """The test documents of NCBI-disease: a PubTator file, or the `*/test/*.txt` members of the
    spyysalo/ncbi-disease archive (train/devel stay in: only the test split is evaluated)."""
    if not path.name.endswith((".tar.gz", ".tgz", ".tar")):
        return _pubtator_units(path)
    try:
        with tarfile.open(path) as tar:
            members = [m for m in tar.getmembers() if m.isfile() and "/test/" in f"/{m.name}" and m.name.endswith(".txt")]
            texts = [tar.extractfile(m).read().decode("utf-8") for m in members]
    except (tarfile.TarError, OSError, EOFError) as e:
        raise InputFileError(path, f"cannot be read as a tar archive ({e}); restore the original") from None
    if not texts:
        raise InputFileError(path, "has no test/*.txt member: not the spyysalo/ncbi-disease archive")
    return _pubtator_units(path, [line for t in texts for line in t.splitlines()])


def _file_units(path: Path, fmt: str) -> Iterator[EvalUnit]:
    if fmt == "ncbi_disease":
        return _ncbi_test_units(path)
    if fmt == "hoc":
        return _hoc_units(path)
    if fmt == "pmid_list":
        return _pmid_list_units(path)
    if fmt == "bc5cdr" and path.suffix != ".json":
        return _pubtator_units(path)
    return _json_units(path)


def eval_files(path: Path, fmt: str) -> list[Path]:
    """The files a source reads: the file itself, or the matching files of a directory."""
    if path.is_file():
        return [path]
    files = sorted({p for g in FORMAT_GLOBS[fmt] for p in path.glob(g) if p.is_file()})
    return [p for p in files if not p.name.endswith(".entities.json")]  # BC5CDR mention maps


# ---- the index ---------------------------------------------------------------------------------


def words(text: str) -> list[str]:
    """The casefolded word tokens n-grams are made of (punctuation and spacing ignored)."""
    return _WORD.findall(text.casefold())


_SLOT_SHIFT = 37  # the prefilter's bit of a key: its top 27 bits


class NgramKeys:
    """A 64-bit key for every word n-gram of a text, in a few array operations.

    key(i) = sum_j hash(w[i+j]) * B^(n-1-j) mod 2^64, a polynomial of the words' (per-process)
    string hashes, computed for all positions at once from one prefix sum: with c[t] = hash(w[t]) *
    B^-t (B is odd, so invertible mod 2^64), key(i) = (C[i+n] - C[i]) * B^(i+n-1). Equal n-grams
    give equal keys; 64 bits make a chance collision negligible. ~5x faster than hashing a tuple
    per n-gram, which is what made decontamination the most expensive step of the map stage.
    """

    BASE = 0x9E3779B97F4A7C15

    def __init__(self, n: int):
        self.n = n
        self._pow = np.ones(1, dtype=np.uint64)  # B^k
        self._inv = np.ones(1, dtype=np.uint64)  # B^-k

    def _grow(self, m: int) -> None:
        if len(self._pow) >= m:
            return
        size = max(m, 2 * len(self._pow), 4096)
        binv = pow(self.BASE, -1, 2**64)
        self._pow = np.array([pow(self.BASE, k, 2**64) for k in range(size)], dtype=np.uint64)
        self._inv = np.array([pow(binv, k, 2**64) for k in range(size)], dtype=np.uint64)

    def __call__(self, w: list[str]) -> np.ndarray:
        m, n = len(w), self.n
        if m < n:
            return np.zeros(0, dtype=np.uint64)
        self._grow(m)
        a = np.fromiter(map(hash, w), dtype=np.int64, count=m).view(np.uint64)
        c = np.empty(m + 1, dtype=np.uint64)
        c[0] = 0
        np.cumsum(a * self._inv[:m], out=c[1:])  # uint64 arithmetic wraps: all of it is mod 2^64
        return (c[n:] - c[:-n]) * self._pow[n - 1:m]


@dataclass
class _SetInfo:
    name: str
    format: str
    path: str
    files: list[str]
    pmids: int = 0
    text_units: int = 0
    short_units: int = 0
    removed_by_pmid: list[str] = field(default_factory=list)
    removed_by_text: list[str] = field(default_factory=list)


class EvalIndex:
    """PMID sets and 13-gram tables of the loaded eval sets; `match(doc)` is a PMID lookup and one
    sorted-array search of the document's n-gram keys.

    The n-gram keys use Python's per-process string hash (fast); the tables are rebuilt from the
    eval texts after unpickling, so the index can be sent to worker processes (a forked worker
    shares its parent's).
    """

    def __init__(self, cfg: DecontamConfig | None = None):
        self.cfg = cfg or DecontamConfig(eval_dir=None)
        self.sets: dict[str, _SetInfo] = {}
        self._pmid_to_set: dict[int, int] = {}
        self._units: list[tuple[int, str]] = []  # (set index, normalised text) for text matching
        self._set_names: list[str] = []
        # Built on first use, after every set is added: (sorted distinct n-gram keys, start of each
        # key's owners in `owners`, owners (unit ids, ascending within a key)), and the distinct
        # n-grams each unit needs to be matched.
        self._table: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._need: np.ndarray = np.zeros(0, dtype=np.int64)
        self._keys = NgramKeys(self.cfg.ngram)
        self._bits = np.zeros(0, dtype=np.uint64)  # prefilter: bit (key >> 37) set for every table key

    # pickling: ship the texts, not the process-specific hash tables
    def __getstate__(self) -> dict:
        return {"cfg": self.cfg, "sets": self.sets, "_pmid_to_set": self._pmid_to_set, "_units": self._units,
                "_set_names": self._set_names}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._table, self._need = None, np.zeros(0, dtype=np.int64)
        self._keys, self._bits = NgramKeys(self.cfg.ngram), np.zeros(0, dtype=np.uint64)

    def add_set(self, name: str, fmt: str, path: str, units: Iterable[EvalUnit], files: list[str]) -> None:
        if name in self.sets:
            raise ConfigError(f"decontam.sources.{name}", "is listed twice")
        idx = len(self._set_names)
        self._set_names.append(name)
        info = self.sets[name] = _SetInfo(name, fmt, path, files)
        seen_text: set[str] = set()
        seen_pmid: set[int] = set()
        n = self.cfg.ngram
        for u in units:
            if u.pmid is not None and u.pmid not in seen_pmid:
                seen_pmid.add(u.pmid)
                self._pmid_to_set.setdefault(u.pmid, idx)
            if u.text:
                t = " ".join(words(normalize_text(u.text)))
                if t and t not in seen_text:  # the same abstract in several split files
                    seen_text.add(t)
                    if t.count(" ") + 1 >= n:
                        self._units.append((idx, t))
                        info.text_units += 1
                    else:
                        info.short_units += 1
        info.pmids = len(seen_pmid)
        self._table = None

    def _build_tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        keys, owners, need = [], [], []
        for uid, (_, text) in enumerate(self._units):
            g = np.unique(self._keys(text.split(" ")))
            need.append(max(1, math.ceil(self.cfg.min_overlap * len(g))))
            keys.append(g)
            owners.append(np.full(len(g), uid, dtype=np.int64))
        k = np.concatenate(keys) if keys else np.zeros(0, dtype=np.uint64)
        o = np.concatenate(owners) if owners else np.zeros(0, dtype=np.int64)
        order = np.lexsort((o, k))
        k, o = k[order], o[order]
        distinct, starts = np.unique(k, return_index=True)
        # 2^27 bits (16 MB): with ~10^6 table keys a document's n-gram passes by chance ~1% of the
        # time, so the binary search (a cache miss per step in the large key array) sees ~2 a document.
        slot = distinct >> np.uint64(_SLOT_SHIFT)
        self._bits = np.zeros(1 << (64 - _SLOT_SHIFT - 6), dtype=np.uint64)
        np.bitwise_or.at(self._bits, slot >> np.uint64(6), np.uint64(1) << (slot & np.uint64(63)))
        self._table, self._need = (distinct, np.r_[starts, len(k)], o), np.asarray(need, dtype=np.int64)
        return self._table

    def build(self) -> EvalIndex:
        """Build the n-gram table now (before forking workers, so they share it instead of each
        building its own)."""
        if self._table is None and self._units:
            self._build_tables()
        return self

    @property
    def empty(self) -> bool:
        return not self._pmid_to_set and not self._units

    def match(self, doc: Document) -> str | None:
        """`"eval:<set>"` when `doc` is (or contains) an eval document, else None; the summary
        records the removal."""
        hit = self.find(doc)
        if hit is None:
            return None
        self.record(*hit, doc.id)
        return f"eval:{hit[0]}"

    def find(self, doc: Document) -> tuple[str, str] | None:
        """(set name, "pmid" | "text") of the eval document `doc` is or contains, or None. Records
        nothing, so it can run in the map workers; `record` adds the removal once it happens."""
        if self.cfg.match_pmid and self._pmid_to_set:
            pmid = _pmid(doc.pmid) if doc.pmid else (_pmid(doc.id) if doc.id.startswith("pmid:") else None)
            if pmid is not None:
                idx = self._pmid_to_set.get(pmid)
                if idx is not None:
                    return self._set_names[idx], "pmid"
        if self.cfg.match_text and self._units:
            uid = self._text_match(doc.text)
            if uid is not None:
                return self._set_names[self._units[uid][0]], "text"
        return None

    def record(self, name: str, how: str, doc_id: str) -> None:
        """Note that `doc_id` was removed as set `name`'s document, found by `how` ("pmid" | "text")."""
        info = self.sets[name]
        (info.removed_by_pmid if how == "pmid" else info.removed_by_text).append(doc_id)

    def fingerprint(self) -> str:
        """sha256 of what matching depends on (settings, PMIDs, normalised texts): map outputs that
        hold `find`'s answers are reused only under the same fingerprint."""
        h = hashlib.sha256(json.dumps([self.cfg.ngram, self.cfg.min_overlap, self.cfg.match_pmid,
                                       self.cfg.match_text, self._set_names]).encode())
        for pmid, idx in sorted(self._pmid_to_set.items()):
            h.update(b"%d:%d," % (pmid, idx))
        for idx, text in self._units:
            h.update(b"%d:" % idx + text.encode("utf-8") + b"\0")
        return h.hexdigest()

    def _text_match(self, text: str) -> int | None:
        n = self.cfg.ngram
        w = words(text)
        if len(w) < n:
            return None
        keys, starts, owners = self._table if self._table is not None else self._build_tables()
        if not keys.size:
            return None
        h = self._keys(w)
        slot = h >> np.uint64(_SLOT_SHIFT)
        h = h[(self._bits[slot >> np.uint64(6)] >> (slot & np.uint64(63))) & np.uint64(1) == 1]
        if not h.size:
            return None
        at = np.minimum(np.searchsorted(keys, h), keys.size - 1)
        shared = np.unique(at[keys[at] == h])  # the distinct n-grams the document shares
        if not shared.size:
            return None
        hits = np.bincount(np.concatenate([owners[starts[i]:starts[i + 1]] for i in shared.tolist()]))
        ok = np.flatnonzero(hits >= self._need[:hits.size])
        return int(ok[0]) if ok.size else None  # lowest unit id: the first configured set wins, deterministically

    def summary(self) -> dict:
        """For the manifest: what was loaded and, per set, the ids removed (sorted)."""
        out: dict[str, Any] = {
            "loaded": bool(self.sets),
            "ngram": self.cfg.ngram,
            "min_overlap": self.cfg.min_overlap,
            "sets": {},
        }
        if not self.sets:
            out["note"] = (f"no decontamination sets were loaded (set ${EVAL_ENV} or decontam.sources); "
                           "evaluation documents may be in the training data")
        for name, s in self.sets.items():
            out["sets"][name] = {
                "format": s.format, "path": s.path, "files": s.files, "pmids": s.pmids,
                "text_units": s.text_units, "text_units_too_short": s.short_units,
                "removed_by_pmid": sorted(set(s.removed_by_pmid)),
                "removed_by_text": sorted(set(s.removed_by_text)),
            }
        return out


def merge_summaries(summaries: Iterable[dict]) -> dict:
    """Combine the `summary()` of several tasks (the loaded sets are the same in each)."""
    merged: dict[str, Any] | None = None
    for s in summaries:
        if merged is None:
            merged = json.loads(json.dumps(s))  # a deep copy
            continue
        for name, info in s["sets"].items():
            m = merged["sets"].setdefault(name, json.loads(json.dumps(info)))
            for k in ("removed_by_pmid", "removed_by_text"):
                m[k] = sorted(set(m[k]) | set(info[k]))
    return merged or EvalIndex().summary()


def load_eval_sets(cfg: DecontamConfig | None = None, section: str = "decontam",
                   extra: Sequence[EvalSource] = ()) -> EvalIndex:
    """Read every configured eval set (and the `extra` ones) into an index (empty when none)."""
    cfg = cfg or DecontamConfig()
    index = EvalIndex(cfg)
    if not cfg.enabled:
        return index
    for src, path, key in cfg.resolved_sources(section, extra):
        files = eval_files(path, src.format)
        if not files:
            globs = ", ".join(FORMAT_GLOBS[src.format])
            raise ConfigError(key, f"{path} has no {globs} files for format {src.format!r}")
        units = (u for f in files for u in _file_units(f, src.format))
        index.add_set(src.name, src.format, str(path), units, [str(f) for f in files])
    return index
