"""Stage (b), merge: PubMed versions and deletions -> dedup -> decontaminate -> split -> Parquet.

Reads the per-file map outputs in load order, so the result is the same whatever the number of
map tasks or workers was. The map workers already computed every per-document key (id hash, text
hash, PMID, split, evaluation-set match: records.MAP_SCHEMA), so the merge works on fixed-size
arrays, ~50 bytes a record, never on Python objects per document:

1. versions: every record's (id hash, file order, position) sorted; an id with one record keeps
   it, the few ids with several are replayed in (file order, position) order: a later record
   replaces an earlier one, within one file the higher version wins, a deletion removes the id,
   a filtered-out record is a tombstone that removes earlier versions too;
2. dedup (data_prep.text.dedup.array_drops) and decontamination over the survivors;
3. the kept rows are copied from the map outputs into `documents/part-NNNNN.parquet`, the parts
   written in parallel (`workers` processes), each the same bytes whoever writes it.
"""

from __future__ import annotations

import functools
import json
import logging
import multiprocessing as mp
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from common.atomic import atomic_path, atomic_write_json
from data_prep.config import PrepConfig
from data_prep.document import Document
from data_prep.errors import PrepError
from data_prep.pipeline.inputs import describe_change, input_set_sha256, inputs_changed
from data_prep.pipeline.manifest import drop_manifest
from data_prep.pipeline.markers import is_done, mark_done, marker_path, pause_point, read_json, sha256_file
from data_prep.pipeline.records import (
    DOCUMENTS_FIELDS,
    DOCUMENTS_SCHEMA,
    MAP_FORMAT,
    documents_row,
    row_document,
)
from data_prep.sources.config import DemoSource
from data_prep.text.decontam import EvalSource, load_eval_sets
from data_prep.text.dedup import DROP_REASONS, array_drops

log = logging.getLogger(__name__)

KINDS = ("doc", "drop", "deletion")  # map rows' `kind`, coded by index
_DOC, _DROP, _DELETION = range(3)


def hash_words(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A binary(16) column (no nulls) as (n, 2) uint64: sortable keys without a Python object each."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if arr.null_count:
        raise ValueError("a null hash in a map output")
    words = np.frombuffer(arr.buffers()[1], dtype=">u8", count=2 * len(arr), offset=16 * arr.offset)
    return words.reshape(-1, 2).astype(np.uint64)


def _codes(col: pa.ChunkedArray, names: list[str]) -> np.ndarray:
    """A string column as indices into `names` (extended with new values), -1 for null."""
    enc = pc.dictionary_encode(col).combine_chunks()
    remap = []
    for v in enc.dictionary.to_pylist():
        if v not in names:
            names.append(v)
        remap.append(names.index(v))
    idx = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    return np.where(idx >= 0, np.asarray(remap + [-1], dtype=np.int64)[idx], -1)


def read_map_columns(path: Path, columns: list[str]) -> pa.Table:
    try:
        return pq.read_table(path, columns=columns)
    except (KeyError, pa.ArrowInvalid) as e:
        raise PrepError(f"{path}: not a map output of this version ({e}); rerun the map stage "
                        "(stage=all, or the stage=map tasks)") from None


@dataclass
class Resolution:
    winners: dict[int, np.ndarray]  # file order -> sorted positions of the records that survive
    counts: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)
    final: dict[str, str] | None = None  # id -> kind of its last event ("doc" | "drop" | "deletion"), if kept


def resolve_versions(map_files: list[tuple[int, Path]], keep_ids: bool = False) -> Resolution:
    """Which record of each id survives; see the module doc for the rules. `keep_ids`: also
    return every id's final kind (an append retires the earlier generations' copies of them)."""
    cols = ["pos", "kind", "id_hash", "version", "drop_reason"] + (["id"] if keep_ids else [])
    hashes, orders, positions, kinds, versions, reasons, ids = [], [], [], [], [], [], []
    reason_names: list[str] = []
    for order, path in map_files:
        t = read_map_columns(path, cols)
        hashes.append(hash_words(t["id_hash"]))
        orders.append(np.full(t.num_rows, order, dtype=np.int64))
        positions.append(t["pos"].to_numpy().astype(np.int64))
        kinds.append(_codes(t["kind"], list(KINDS)).astype(np.int8))
        versions.append(pc.fill_null(t["version"], 1).to_numpy().astype(np.int32))
        reasons.append(_codes(t["drop_reason"], reason_names).astype(np.int32))
        if keep_ids:
            ids.extend(t["id"].chunks)
    if not hashes:
        return Resolution({}, Counter({"unique_ids": 0}), Counter(), {} if keep_ids else None)
    h, order_, pos, kind = np.concatenate(hashes), np.concatenate(orders), np.concatenate(positions), np.concatenate(kinds)
    version, reason = np.concatenate(versions), np.concatenate(reasons)
    del hashes, orders, positions, kinds, versions, reasons
    # Events are in (file order, position) order; a stable sort by id keeps that order within an id.
    idx = np.lexsort((h[:, 1], h[:, 0]))
    hs = h[idx]
    new = np.r_[True, (hs[1:] != hs[:-1]).any(axis=1)]
    del hs
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], len(idx)]
    finals = idx[starts]  # right for every id with a single record
    superseded = 0
    for g in np.flatnonzero(ends - starts > 1):  # ids with several records: replay them in order
        latest = -1
        for ev in idx[starts[g]:ends[g]]:
            if kind[ev] != _DELETION and latest >= 0 and kind[latest] != _DELETION:
                superseded += 1
                if order_[latest] == order_[ev] and version[latest] > version[ev]:
                    continue  # an older version listed after a newer one in the same file
            latest = ev
        finals[g] = latest
    fk = kind[finals]
    counts: Counter = Counter()
    for key, value in (("records", int((kind != _DELETION).sum())), ("deletion_events", int((kind == _DELETION).sum())),
                       ("superseded", superseded), ("deleted", int((fk == _DELETION).sum()))):
        if value:
            counts[key] = value
    counts["unique_ids"] = len(finals) - counts["deleted"]
    dropped: Counter = Counter()
    for code, n in zip(*np.unique(reason[finals[fk == _DROP]], return_counts=True), strict=True):
        dropped[reason_names[code] if code >= 0 else None] = int(n)
    won = finals[fk == _DOC]
    winners: dict[int, np.ndarray] = {}
    if won.size:
        wo, wp = order_[won], pos[won]
        by = np.lexsort((wp, wo))
        wo, wp = wo[by], wp[by]
        cut = np.flatnonzero(np.r_[True, wo[1:] != wo[:-1]])
        for a, b in zip(cut, np.r_[cut[1:], len(wo)], strict=True):
            winners[int(wo[a])] = wp[a:b]
    final = None
    if keep_ids:
        final_ids = pa.chunked_array(ids, type=pa.string()).take(pa.array(finals)).to_pylist()
        final = {i: KINDS[k] for i, k in zip(final_ids, fk.tolist(), strict=True)}
    return Resolution(winners, counts, dropped, final)


def iter_survivors(map_files: list[tuple[int, Path]], res: Resolution) -> Iterator[Document]:
    """The surviving documents, in (file order, position) order."""
    for order, path in map_files:
        keep = res.winners.get(order)
        if keep is None or not keep.size:
            continue
        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=4096):
            sel = np.isin(batch.column("pos").to_numpy(), keep)
            if sel.any():
                for row in batch.filter(pa.array(sel)).to_pylist():
                    yield row_document(row)


class DocumentsWriter:
    """`documents/part-NNNNN.parquet`: fixed rows per file and per row group, deterministic bytes.

    pyarrow writes no timestamp into Parquet metadata; the writer version string is the only
    environment-dependent byte, and it is the same for the same pyarrow.
    """

    def __init__(self, folder: Path, rows_per_file: int, row_group_size: int, compression: str,
                 rel_to: Path | None = None):
        self.folder = Path(folder)
        self.rel_to = Path(rel_to) if rel_to is not None else self.folder.parent  # parts' paths are relative to it
        self.folder.mkdir(parents=True, exist_ok=True)
        self.rows_per_file = rows_per_file
        self.row_group_size = row_group_size
        self.compression = None if compression == "none" else compression
        self.rows: list[dict] = []
        self.parts: list[dict] = []

    def add(self, doc: Document, split: str) -> None:
        self.rows.append(documents_row(doc, split))
        if len(self.rows) >= self.rows_per_file:
            self._write()

    def _write(self) -> None:
        path = self.folder / f"part-{len(self.parts):05d}.parquet"
        table = pa.Table.from_pylist(self.rows, schema=DOCUMENTS_SCHEMA)
        write_documents_table(table, path, self.row_group_size, self.compression)
        self.parts.append({"path": path.relative_to(self.rel_to).as_posix(), "rows": len(self.rows),
                           "sha256": sha256_file(path)})
        self.rows = []
        pause_point("documents")  # some parts written, the merge not finished

    def close(self) -> list[dict]:
        if self.rows or not self.parts:
            self._write()
        return self.parts


def write_documents_table(table: pa.Table, path: Path, row_group_size: int, compression: str | None) -> None:
    """One documents part, atomically, with the settings that make its bytes reproducible."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, row_group_size=row_group_size, compression=compression,
                       write_statistics=True, store_schema=True)


def iter_documents(out_dir: Path, parts: list[dict], columns: list[str] | None = None,
                   batch_size: int = 4096) -> Iterator[dict[str, list[Any]]]:
    """Column batches (as dicts of lists) of the written documents, in order."""
    for part in parts:
        pf = pq.ParquetFile(Path(out_dir) / part["path"])
        for batch in pf.iter_batches(batch_size=batch_size, columns=columns):
            yield batch.to_pydict()



# ---- the stage ---------------------------------------------------------------------------------

_SURVIVOR_COLUMNS = ["pos", "text_hash", "source", "pmid_num", "split", "eval_set", "eval_by"]
_PART_COLUMNS = list(DOCUMENTS_FIELDS)  # the map output has every documents column
# A documents row holds the Document's value where the map row may hold a null (records.row_document).
_NULL_DEFAULTS = {"title": "", "version": 1, "language": "", "journal": "", "file": ""}


@dataclass
class Survivors:
    """The documents that survive version resolution, as arrays in (file order, position) order."""

    file: np.ndarray  # index into map_files
    row: np.ndarray  # row in that map output
    hashes: np.ndarray  # (n, 2) uint64 text hashes
    source: np.ndarray  # index into `sources`
    pmid: np.ndarray  # int64, -1 when none
    val: np.ndarray  # bool: in the val split
    sources: list[str]
    evals: list[tuple[int, str, str]]  # (survivor index, eval set, "pmid" | "text"): the few that match


def collect_survivors(map_files: list[tuple[int, Path]], res: Resolution, progress: bool) -> Survivors:
    files, rows, hashes, sources, pmids, vals = [], [], [], [], [], []
    source_names: list[str] = []
    evals: list[tuple[int, str, str]] = []
    n = 0
    for fi, (order, path) in enumerate(tqdm(map_files, desc="survivors", unit="file", disable=not progress)):
        keep = res.winners.get(order)
        if keep is None or not keep.size:
            continue
        t = read_map_columns(path, _SURVIVOR_COLUMNS)
        sel = np.flatnonzero(np.isin(t["pos"].to_numpy(), keep))
        t = t.take(pa.array(sel))
        files.append(np.full(len(sel), fi, dtype=np.int32))
        rows.append(sel.astype(np.int32))
        hashes.append(hash_words(t["text_hash"]))
        sources.append(_codes(t["source"], source_names).astype(np.int16))
        pmids.append(pc.fill_null(t["pmid_num"], -1).to_numpy().astype(np.int64))
        vals.append(pc.equal(t["split"], "val").to_numpy(zero_copy_only=False))
        hit = pc.is_valid(t["eval_set"]).to_numpy(zero_copy_only=False)
        if hit.any():
            at = np.flatnonzero(hit)
            sets, how = t["eval_set"].take(pa.array(at)).to_pylist(), t["eval_by"].take(pa.array(at)).to_pylist()
            evals.extend(zip((n + at).tolist(), sets, how, strict=True))
        n += len(sel)

    def cat(parts: list[np.ndarray], dtype: Any, shape: tuple[int, ...] = (0,)) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(shape, dtype=dtype)

    return Survivors(cat(files, np.int32), cat(rows, np.int32), cat(hashes, np.uint64, (0, 2)),
                     cat(sources, np.int16), cat(pmids, np.int64), cat(vals, bool), source_names, evals)


def survivor_ids(map_files: list[tuple[int, Path]], surv: Survivors, which: np.ndarray) -> list[str]:
    """The ids of survivors `which` (read from their map outputs, one read per file)."""
    out: list[str | None] = [None] * len(which)
    which = np.asarray(which)
    for fi in np.unique(surv.file[which]):
        at = np.flatnonzero(surv.file[which] == fi)
        col = pq.read_table(map_files[fi][1], columns=["id"])["id"]
        for k, v in zip(at.tolist(), col.take(pa.array(surv.row[which[at]])).to_pylist(), strict=True):
            out[k] = v
    return out  # type: ignore[return-value]


def documents_table(table: pa.Table) -> pa.Table:
    """Map-output rows (every documents column, plus `split`) as a documents part's table."""
    cols = []
    for name in DOCUMENTS_FIELDS:
        col = table[name]
        if name in _NULL_DEFAULTS:
            col = pc.fill_null(col, _NULL_DEFAULTS[name])
        if name in ("publication_types", "mesh") and col.null_count:
            col = pc.if_else(pc.is_null(col), pa.scalar([], col.type), col)
        if name == "file":  # the file's name, without its folder (os.path.basename)
            col = pc.replace_substring_regex(col, pattern="^.*/", replacement="")
        cols.append(col)
    # One chunk per column, as `Table.from_pylist` makes: the writer's pages (and so the bytes) follow chunks.
    return pa.Table.from_arrays(cols, schema=DOCUMENTS_SCHEMA).combine_chunks()


@dataclass(frozen=True)
class PartJob:
    path: Path  # documents/part-NNNNN.parquet
    rel: str  # its path in the manifest
    sources: tuple[tuple[Path, np.ndarray], ...]  # (map output, rows of it), in order
    row_group_size: int
    compression: str | None


def write_part(job: PartJob) -> dict:
    """One documents part from its map rows; the same bytes in any process."""
    tables = [read_map_columns(path, _PART_COLUMNS).take(pa.array(rows)) for path, rows in job.sources]
    table = documents_table(pa.concat_tables(tables)) if tables else DOCUMENTS_SCHEMA.empty_table()
    write_documents_table(table, job.path, job.row_group_size, job.compression)
    return {"path": job.rel, "rows": table.num_rows, "sha256": sha256_file(job.path)}


def part_jobs(cfg: PrepConfig, doc_dir: Path, map_files: list[tuple[int, Path]], file: np.ndarray,
              row: np.ndarray, rel_to: Path) -> list[PartJob]:
    """documents.rows_per_file kept rows per part, in order (one empty part for an empty corpus)."""
    per = cfg.documents.rows_per_file
    compression = None if cfg.documents.compression.value == "none" else cfg.documents.compression.value
    jobs = []
    for k, a in enumerate(range(0, max(1, len(file)), per)):
        f, r = file[a:a + per], row[a:a + per]
        cut = np.flatnonzero(np.r_[True, f[1:] != f[:-1]]) if len(f) else np.zeros(0, dtype=np.int64)
        src = tuple((map_files[int(f[i])][1], r[i:j]) for i, j in zip(cut, np.r_[cut[1:], len(f)], strict=True))
        path = doc_dir / f"part-{k:05d}.parquet"
        jobs.append(PartJob(path, path.relative_to(rel_to).as_posix(), src, cfg.documents.row_group_size, compression))
    return jobs


def write_parts(jobs: list[PartJob], workers: int, progress: bool) -> list[dict]:
    """Write the parts (in `workers` processes when there are several), returning their records in order."""
    parts: list[dict] = []
    bar = tqdm(total=len(jobs), desc="documents", unit="part", disable=not progress)

    def done(rec: dict) -> None:
        parts.append(rec)
        bar.update(1)
        pause_point("documents")  # some parts written, the merge not finished

    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            done(write_part(job))
    else:
        mpctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
        with mpctx.Pool(min(workers, len(jobs))) as pool:
            for rec in pool.imap(write_part, jobs):  # in order: the parts' records are listed as written
                done(rec)
    bar.close()
    return parts


def check_map_markers(map_files: list[tuple[int, Path]], evals_sha256: str | None) -> None:
    """Every map output was made by this version against these evaluation sets (a stage=reduce
    after the eval data changed must not use the old matches)."""
    for _, path in map_files:
        info = read_json(marker_path(path))
        if info.get("format") != MAP_FORMAT or info.get("evals_sha256") != evals_sha256:
            what = "another version of data_prep" if info.get("format") != MAP_FORMAT else "other evaluation sets"
            raise PrepError(f"{path}: made by {what}; rerun the map stage (stage=all, or the stage=map tasks)")


def run_merge(cfg: PrepConfig, map_files: list[tuple[int, Path]], inputs: list[dict]) -> dict:
    """Versions -> dedup -> decontamination -> split -> documents/; returns (and records) the counts.

    `inputs` is the input set (`pipeline.inputs.input_entries`) the map files come from. A finished
    merge is reused only for the same input set and evaluation sets; for other inputs it is refused
    (`InputsChanged`), or redone with `overwrite=true`."""
    info_path = cfg.out_path / "work" / "merge.json"
    inputs_sha = input_set_sha256(inputs)
    evals = load_eval_sets(cfg.decontam, extra=extra_eval_sources(cfg))
    evals_sha = None if evals.empty else evals.fingerprint()
    if is_done(info_path):
        info = read_json(info_path)
        if info.get("inputs_sha256") == inputs_sha and info.get("evals_sha256") == evals_sha:
            return info
        if info.get("inputs_sha256") == inputs_sha:
            log.warning("%s: the evaluation sets changed: redoing the merge", cfg.out_dir)
        else:
            recorded = info.get("inputs")
            change = (describe_change(recorded, inputs, with_sha=True) if isinstance(recorded, list) else None) \
                or "the finished merge has no record of its inputs (an out_dir of an older version)"
            if not cfg.overwrite:
                raise inputs_changed(cfg.out_dir, change)
            log.warning("%s: inputs changed (%s): rebuilding documents, tokenizer and shards (overwrite=true)",
                        cfg.out_dir, change)
        marker_path(info_path).unlink()
    check_map_markers(map_files, evals_sha)
    drop_manifest(cfg.out_path)
    doc_dir = cfg.out_path / "documents"
    if doc_dir.exists():
        shutil.rmtree(doc_dir)  # leftovers of a killed merge: redo it whole
    doc_dir.mkdir(parents=True)
    old_keys = cfg.out_path / "work" / "dedup"  # key files of earlier versions
    if old_keys.exists():
        shutil.rmtree(old_keys)
    res = resolve_versions(map_files)
    surv = collect_survivors(map_files, res, cfg.progress)
    drop = array_drops(surv.hashes, surv.sources, surv.source, surv.pmid,
                       functools.partial(survivor_ids, map_files, surv), cfg.dedup)
    dup_reasons = Counter({DROP_REASONS[c]: int(n) for c, n in zip(*np.unique(drop, return_counts=True), strict=True)
                           if c})
    keep = drop == 0
    hits = [(i, name, how) for i, name, how in surv.evals if keep[i]]
    decontaminated: dict[str, list[str]] = {}
    if hits:
        for (_, name, how), doc_id in zip(hits, survivor_ids(map_files, surv, np.array([i for i, _, _ in hits])),
                                          strict=True):
            evals.record(name, how, doc_id)
            decontaminated.setdefault(name, []).append(doc_id)
        keep[[i for i, _, _ in hits]] = False
    n_val = int(surv.val[keep].sum())
    per_split = Counter(train=int(keep.sum()) - n_val, val=n_val)
    jobs = part_jobs(cfg, doc_dir, map_files, surv.file[keep], surv.row[keep], cfg.out_path)
    del surv, drop, keep
    parts = write_parts(jobs, cfg.workers, cfg.progress)
    counts = dict(res.counts)
    counts.update(duplicates=sum(dup_reasons.values()),
                  decontaminated=sum(len(v) for v in decontaminated.values()),
                  kept=sum(per_split.values()), train_documents=per_split["train"], val_documents=per_split["val"])
    info = {"counts": counts, "dropped": dict(sorted(res.dropped.items())),
            "duplicates": dict(sorted(dup_reasons.items())),
            "decontaminated": {k: sorted(v) for k, v in sorted(decontaminated.items())},
            "decontam_summary": json.loads(json.dumps(evals.summary(), default=str)), "documents": parts,
            "inputs": inputs, "inputs_sha256": inputs_sha, "evals_sha256": evals_sha}
    atomic_write_json(info_path, info)
    mark_done(info_path)
    pause_point("merge")
    return info


def extra_eval_sources(cfg: PrepConfig) -> list[EvalSource]:
    """Eval sets the source brings along: the demo PubMedQA set with `source=demo` (docs/demo.md)."""
    if not isinstance(cfg.source, DemoSource) or not cfg.decontam.enabled:
        return []
    from data_prep.sources import demo  # lazy: the demo generator is needed with source=demo only

    return demo.eval_sources(cfg.source_cache_dir)
