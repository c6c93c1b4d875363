"""Exact deduplication and the PubMed/PMC cross-source policy, identical for 1 task or 1,000.

Two ways to use it, with the same rules:

- **Plan (parallel, the pipeline's way).** Each task turns its documents into `DedupKey`s
  (`dedup_key(doc)`, or `KeyWriter` to a sorted key file), a merge step combines all keys into a
  `DedupPlan` (`merge_keys` / `merge_key_files`), and each task then asks `plan.check(doc)`. The
  winner of every group of identical texts depends only on the documents' ids, never on how they
  were split into tasks or in what order the tasks finished.
- **Stream (one process, online).** `StreamDedup.check(doc)` keeps a set of seen hashes; the first
  copy seen wins. It gives the same result as the plan when documents arrive in `id_rank` order,
  and is meant for small local runs and notebooks.

Rules (docs/cleaning.md says why):

1. Cross-source policy first. `prefer_fulltext` (default): a PubMed abstract whose PMID is also in
   the PMC full-text set is dropped as `duplicate_of_fulltext` (the full text contains it).
   `prefer_abstract`: the PMC article is dropped as `duplicate_of_abstract`. `keep_both`: neither.
2. Exact text duplicates among the survivors: the key is blake2b-128 of the casefolded,
   whitespace-collapsed text. The copy with the smallest `id_rank` stays (PMC before PubMed, then
   the smallest numeric id, i.e. the oldest record); the others are dropped as `duplicate_text`.

PubMed's "latest version of a PMID wins" is resolved by the pipeline before this stage.
"""

from __future__ import annotations

import hashlib
import heapq
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import NamedTuple

import numpy as np

from common.atomic import atomic_open
from data_prep.document import Document
from data_prep.errors import InputFileError


class CrossSource(str, Enum):
    """Which copy stays when a PubMed abstract and a PMC full text have the same PMID."""

    prefer_fulltext = "prefer_fulltext"
    keep_both = "keep_both"
    prefer_abstract = "prefer_abstract"


FULLTEXT_SOURCE = "pmc"
ABSTRACT_SOURCE = "pubmed"


@dataclass
class DedupConfig:
    """`cfg.dedup`."""

    enabled: bool = True
    exact: bool = True  # drop exact text duplicates (`duplicate_text`)
    cross_source: CrossSource = CrossSource.prefer_fulltext


# ---- keys ---------------------------------------------------------------------------------------


def text_hash(text: str) -> bytes:
    """16-byte blake2b of the casefolded, whitespace-collapsed text."""
    return hashlib.blake2b(" ".join(text.casefold().split()).encode("utf-8"), digest_size=16).digest()


_ID = re.compile(r"([a-z]+):(?:PMC)?(\d+)$", re.IGNORECASE)
_SOURCE_RANK = {"pmcid": 0, "pmid": 1}


def id_rank(doc_id: str) -> tuple[int, str, int, str]:
    """Sort key that decides which copy of a duplicate stays: smallest wins.

    PMC full text first (it carries the licence and the body), then PubMed, then DOI/sha1 ids;
    within a kind the smallest number first (`pmid:9` before `pmid:10`), the id string as the
    final tie-break so the order is total.
    """
    m = _ID.match(doc_id)
    if m:
        prefix = m.group(1).lower()
        return (_SOURCE_RANK.get(prefix, 2), prefix, int(m.group(2)), doc_id)
    return (3, doc_id.split(":", 1)[0], 0, doc_id)


class DedupKey(NamedTuple):
    """What a task emits per document for the merge; sorts by hash, then `id_rank`."""

    hash: bytes
    rank: tuple[int, str, int, str]
    id: str
    source: str
    pmid: str  # "" when the document has none


def dedup_key(doc: Document) -> DedupKey:
    return DedupKey(text_hash(doc.text), id_rank(doc.id), doc.id, doc.source, doc.pmid or "")


def _pmid_int(pmid: str | None) -> int | None:
    if pmid and pmid.isdigit():
        return int(pmid)
    return None


# ---- the plan (parallel tasks + merge) ----------------------------------------------------------


@dataclass
class DedupPlan:
    """The merge result: which ids go and why. `check(doc)` is all a task needs afterwards."""

    drops: dict[str, str] = field(default_factory=dict)  # id -> reason
    winners: dict[str, str] = field(default_factory=dict)  # dropped id -> id of the copy kept

    def check(self, doc: Document) -> str | None:
        return self.drops.get(doc.id)

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(self.drops.values()).items()))

    def save(self, path: str | Path) -> None:
        """Write `id<TAB>reason<TAB>kept_id` lines, sorted, atomically."""
        with atomic_open(path, "w") as f:
            for doc_id in sorted(self.drops):
                f.write(f"{doc_id}\t{self.drops[doc_id]}\t{self.winners.get(doc_id, '')}\n")

    @classmethod
    def load(cls, path: str | Path) -> DedupPlan:
        plan = cls()
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                parts = line.rstrip("\n").split("\t")
                if len(parts) != 3:
                    raise InputFileError(path, f"line {n} is not 'id<TAB>reason<TAB>kept_id'; rerun the dedup merge")
                plan.drops[parts[0]] = parts[1]
                if parts[2]:
                    plan.winners[parts[0]] = parts[2]
        return plan


def cross_source_rule(policy: CrossSource) -> tuple[str, str, str] | None:
    """(winning source, losing source, drop reason) of a cross-source policy; None for keep_both."""
    if policy == CrossSource.prefer_fulltext:
        return FULLTEXT_SOURCE, ABSTRACT_SOURCE, "duplicate_of_fulltext"
    if policy == CrossSource.prefer_abstract:
        return ABSTRACT_SOURCE, FULLTEXT_SOURCE, "duplicate_of_abstract"
    return None


def pmid_number(pmid: str | None) -> int | None:
    """The PMID as a number (how cross-source matches compare them), None when it is not one."""
    return _pmid_int(pmid)


def _cross_source_drops(keys: Iterable[DedupKey], policy: CrossSource) -> tuple[set[int], str, str]:
    """PMIDs whose copy in the losing source is dropped, the losing source, and the reason."""
    rule = cross_source_rule(policy)
    assert rule is not None  # callers skip keep_both
    winner, loser, reason = rule
    pmids: set[int] = set()
    for k in keys:
        if k.source == winner:
            p = _pmid_int(k.pmid)
            if p is not None:
                pmids.add(p)
    return pmids, loser, reason


def _merge_sorted(
    streams: Sequence[Iterable[DedupKey]], cfg: DedupConfig, covered: set[int], loser_source: str, reason: str,
    plan: DedupPlan,
) -> None:
    """One pass over hash-sorted key streams: groups of equal hashes are adjacent."""
    group_hash: bytes | None = None
    kept: str | None = None
    for k in heapq.merge(*streams):
        if covered and k.source == loser_source and _pmid_int(k.pmid) in covered:
            plan.drops[k.id] = reason
            continue
        if not cfg.exact:
            continue
        if k.hash != group_hash:  # the first key of a group has the smallest rank: it stays
            group_hash, kept = k.hash, k.id
        elif k.id != kept:  # (the same id twice is the same document seen twice, not a duplicate)
            plan.drops[k.id] = "duplicate_text"
            plan.winners[k.id] = kept  # type: ignore[assignment]


def merge_keys(key_groups: Iterable[Iterable[DedupKey]], cfg: DedupConfig | None = None) -> DedupPlan:
    """Merge the keys of all tasks (in any order, any split) into a plan."""
    cfg = cfg or DedupConfig()
    plan = DedupPlan()
    if not cfg.enabled:
        return plan
    streams = [sorted(g) for g in key_groups]
    covered: set[int] = set()
    loser, reason = "", ""
    if cfg.cross_source != CrossSource.keep_both:
        covered, loser, reason = _cross_source_drops((k for s in streams for k in s), cfg.cross_source)
    _merge_sorted(streams, cfg, covered, loser, reason, plan)
    return plan


# ---- the plan from arrays (the pipeline's merge) ---------------------------------------------------

DROP_REASONS = ("", "duplicate_text", "duplicate_of_fulltext", "duplicate_of_abstract")  # codes of `array_drops`


def array_drops(hashes: np.ndarray, sources: Sequence[str], source_codes: np.ndarray, pmids: np.ndarray,
                ids_of: Callable[[np.ndarray], list[str]], cfg: DedupConfig | None = None) -> np.ndarray:
    """`merge_keys`' rules over a whole corpus held as arrays: the drop reason of each document as
    an index into DROP_REASONS (0: kept).

    hashes: (n, 2) uint64, the words of `text_hash`; sources: the source names `source_codes`
    (int, n) index; pmids: int64 (n), -1 where the document has no numeric PMID; ids_of(indices):
    the ids of those documents (asked only for groups of equal texts, to rank them by `id_rank`).
    Sorting fixed-size keys replaces the key files' string heap: ~40 bytes per document.
    """
    cfg = cfg or DedupConfig()
    n = len(pmids)
    out = np.zeros(n, dtype=np.int8)
    if not cfg.enabled or n == 0:
        return out
    rule = cross_source_rule(cfg.cross_source)
    if rule is not None:
        winner, loser, reason = rule
        code = {s: i for i, s in enumerate(sources)}
        has = pmids >= 0
        win = has & (source_codes == code.get(winner, -1))
        lose = has & (source_codes == code.get(loser, -1))
        if win.any() and lose.any():
            out[lose & np.isin(pmids, np.unique(pmids[win]))] = DROP_REASONS.index(reason)
    if not cfg.exact:
        return out
    cand = np.flatnonzero(out == 0)
    h = hashes[cand]
    order = np.lexsort((h[:, 1], h[:, 0]))
    hs = h[order]
    same = (hs[1:] == hs[:-1]).all(axis=1)  # same[i]: sorted i+1 repeats sorted i's text
    if not same.any():
        return out
    starts = np.flatnonzero(np.r_[True, ~same])
    ends = np.r_[starts[1:], len(hs)]
    dup = np.flatnonzero(ends - starts > 1)
    code_dup = DROP_REASONS.index("duplicate_text")
    for s, e in zip(starts[dup], ends[dup], strict=True):
        members = cand[order[s:e]]
        ranks = [id_rank(i) for i in ids_of(members)]
        best = min(range(len(members)), key=ranks.__getitem__)  # the smallest id_rank stays
        out[np.delete(members, best)] = code_dup
    return out


# ---- key files (what a Slurm array task writes) -------------------------------------------------


class KeyWriter:
    """Collects one task's keys and writes them sorted, so the merge streams them in O(tasks) memory.

    File format: one line per document, `hash_hex<TAB>id<TAB>source<TAB>pmid`, sorted by hash then
    `id_rank`; written atomically (`common.atomic`).
    """

    def __init__(self) -> None:
        self.keys: list[DedupKey] = []

    def add(self, doc: Document) -> None:
        self.keys.append(dedup_key(doc))

    def write(self, path: str | Path) -> None:
        with atomic_open(path, "w") as f:
            for k in sorted(self.keys):
                f.write(f"{k.hash.hex()}\t{k.id}\t{k.source}\t{k.pmid}\n")


def read_keys(path: str | Path) -> Iterator[DedupKey]:
    """Stream a key file written by `KeyWriter` (its sort order is checked as it is read)."""
    prev: DedupKey | None = None
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("\t")
            try:
                h = bytes.fromhex(parts[0])
                if len(parts) != 4 or len(h) != 16:
                    raise ValueError
            except ValueError:
                raise InputFileError(path, f"line {n} is not a dedup key line; rerun the task that wrote it") from None
            k = DedupKey(h, id_rank(parts[1]), parts[1], parts[2], parts[3])
            if prev is not None and k < prev:
                raise InputFileError(path, f"line {n} is out of order; the file was not written by KeyWriter")
            prev = k
            yield k


def merge_key_files(paths: Sequence[str | Path], cfg: DedupConfig | None = None) -> DedupPlan:
    """`merge_keys` over key files; reads each file twice (PMID sets, then the sorted merge)."""
    cfg = cfg or DedupConfig()
    plan = DedupPlan()
    if not cfg.enabled:
        return plan
    for p in paths:
        if not Path(p).is_file():
            raise InputFileError(p, "dedup key file is missing; rerun the task that writes it")
    covered: set[int] = set()
    loser, reason = "", ""
    if cfg.cross_source != CrossSource.keep_both:
        covered, loser, reason = _cross_source_drops((k for p in paths for k in read_keys(p)), cfg.cross_source)
    _merge_sorted([read_keys(p) for p in paths], cfg, covered, loser, reason, plan)
    return plan


# ---- the stream (one process) -------------------------------------------------------------------


class StreamDedup:
    """Online dedup in one process: the first copy of a text wins.

    Cross-source drops need the other source's PMIDs up front: pass `fulltext_pmids` (for
    `prefer_fulltext`) or `abstract_pmids` (for `prefer_abstract`); without them only exact
    duplicates are removed.
    """

    def __init__(
        self, cfg: DedupConfig | None = None, *, fulltext_pmids: Iterable[str | int] = (),
        abstract_pmids: Iterable[str | int] = (),
    ):
        self.cfg = cfg or DedupConfig()
        self.seen: dict[bytes, str] = {}
        self.counts: Counter[str] = Counter()
        policy = self.cfg.cross_source
        pmids = fulltext_pmids if policy == CrossSource.prefer_fulltext else abstract_pmids if policy == CrossSource.prefer_abstract else ()
        self._covered = {int(p) for p in pmids}
        self._loser = ABSTRACT_SOURCE if policy == CrossSource.prefer_fulltext else FULLTEXT_SOURCE
        self._reason = "duplicate_of_fulltext" if policy == CrossSource.prefer_fulltext else "duplicate_of_abstract"

    def check(self, doc: Document) -> str | None:
        if not self.cfg.enabled:
            return None
        reason = None
        if self._covered and doc.source == self._loser and _pmid_int(doc.pmid) in self._covered:
            reason = self._reason
        elif self.cfg.exact:
            h = text_hash(doc.text)
            first = self.seen.setdefault(h, doc.id)
            if first != doc.id:
                reason = "duplicate_text"
        if reason:
            self.counts[reason] += 1
        return reason
