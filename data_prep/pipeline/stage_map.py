"""Stage (a), one task per input file: parse -> apply source metadata -> clean -> filter.

Output per file, under `work/map/`: `<key>.parquet` with every record in file order (kept
candidates, filtered-out records as tombstones without text, and PubMed deletions), then the
completion marker `<key>.parquet.done` holding the counts and the input's size, mtime and sha256
(a rerun reuses the output when the size matches and the mtime or, failing that, the sha256, and
the output's format and the evaluation sets it was checked against are the current ones). The
per-document work of the later stages happens here too, in parallel: each kept candidate's dedup
key, split and evaluation-set match are columns of the output (records.MAP_SCHEMA), so the merge
only compares fixed-size keys and copies rows. A
file that raises `InputFileError` gets a marker that says so (it is quarantined) and no Parquet:
its partial output is discarded. The output depends only on the file and the config, never on
which task or worker ran it, which is what makes reruns and task counts byte-identical.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing as mp
import re
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from common.atomic import atomic_path, atomic_write_text
from data_prep.config import PrepConfig
from data_prep.document import Deletion, Document
from data_prep.errors import InputFileError, PrepError
from data_prep.parse.formats import detect_format
from data_prep.parse.jats import JatsOptions, iter_jats
from data_prep.parse.pubmed import iter_pubmed
from data_prep.parse.records_file import BadRecord, is_record_file, iter_record_file
from data_prep.parse.xml_safety import ParseLimits
from data_prep.pipeline.generations import gen_name, gen_work_dir
from data_prep.pipeline.markers import is_done, mark_done, marker_path, pause_point, read_json, sha256_file
from data_prep.pipeline.records import MAP_FORMAT, MAP_SCHEMA, document_row, id_key
from data_prep.pipeline.stage_merge import extra_eval_sources
from data_prep.sources import InputFile
from data_prep.text.clean import CleanConfig, clean_document
from data_prep.text.decontam import EvalIndex, load_eval_sets
from data_prep.text.dedup import pmid_number, text_hash
from data_prep.text.filters import Filter, apply_filters, build_filters
from data_prep.tokens.shards import split_of

META_FIELDS = {"license", "pmid", "pmcid", "doi", "version", "article_type", "year", "journal"}


def file_key(order: int, path: Path) -> str:
    """Name of a file's map output: its load order plus a readable, filesystem-safe stem."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(path).name)[:80]
    return f"{order:07d}-{stem}"


def apply_meta(doc: Document, meta: dict) -> Document:
    """Fill what the XML lacks from the source's metadata (PMC's license, pmid, version)."""
    changes = {}
    for k in META_FIELDS & set(meta):
        v = meta[k]
        if v in (None, ""):
            continue
        cur = getattr(doc, k)
        if k == "version":
            if doc.version == 1 and int(v) != 1:
                changes[k] = int(v)
        elif cur in (None, "", 0):
            changes[k] = str(v) if k not in ("year",) else int(v)
    return dataclasses.replace(doc, **changes) if changes else doc


def _doc_row(ctx: MapContext, pos: int, doc: Document, kind: str, reason: str | None) -> dict:
    row = document_row(doc)
    row.update(pos=pos, kind=kind, drop_reason=reason, id_hash=id_key(doc.id))
    if kind == "drop":  # tombstone: the id still supersedes earlier versions; text is not needed
        row["text"] = row["title"] = row["abstract"] = None
        return row
    hit = ctx.evals.find(doc) if ctx.evals is not None else None
    row.update(text_hash=text_hash(doc.text), pmid_num=pmid_number(doc.pmid),
               split=split_of(doc.id, ctx.val_fraction), eval_set=hit[0] if hit else None,
               eval_by=hit[1] if hit else None)
    return row


def _deletion_row(pos: int, d: Deletion) -> dict:
    doc_id = f"pmid:{d.pmid}"
    return {"pos": pos, "kind": "deletion", "drop_reason": None, "id": doc_id, "pmid": d.pmid,
            "source": "pubmed", "file": d.file, "file_order": d.file_order, "id_hash": id_key(doc_id)}


def iter_records(path: Path, order: int, jats_options: JatsOptions, limits: ParseLimits | None = None):
    if is_record_file(path):  # users' own JSONL/Parquet corpora, by name (they have no XML root to sniff)
        return iter_record_file(path, file_order=order)
    fmt = detect_format(path)
    if fmt == "pubmed":
        return iter_pubmed(path, file_order=order, limits=limits)
    if fmt == "jats":
        return iter_jats(path, jats_options, file_order=order, limits=limits)
    raise InputFileError(path, "root element is neither PubMed nor JATS XML; remove the file from the input")


@dataclasses.dataclass
class MapContext:
    """What the map stage needs, built once per run and handed to each worker process once.

    The filters and the evaluation index are built here, from this run's config, so no filter
    object outlives its run or is shared between runs with different configs."""

    map_dir: Path
    rejects_dir: Path | None
    clean_cfg: CleanConfig
    filters: list[Filter]
    jats_options: JatsOptions
    parse_limits: ParseLimits = dataclasses.field(default_factory=ParseLimits)
    val_fraction: float = 0.0
    evals: EvalIndex | None = None  # None: decontamination off (or nothing loaded)
    evals_sha256: str | None = None  # EvalIndex.fingerprint(): reused outputs must have the same

    @property
    def key(self) -> str:
        """What identifies this context in a worker process (a value: the run's map folder and
        the settings that shape its outputs)."""
        return f"{self.map_dir}|{self.evals_sha256}|{self.val_fraction!r}"


def map_file(ctx: MapContext, path: Path, order: int, meta: dict) -> dict:
    """Run stage (a) on one file unless its marker exists; return the marker's content."""
    path = Path(path)
    out = ctx.map_dir / f"{file_key(order, path)}.parquet"
    size, mtime = _stat(path)
    sha = None
    if is_done(out):
        info = read_json(marker_path(out))
        current = info.get("format") == MAP_FORMAT and info.get("evals_sha256") == ctx.evals_sha256
        if current and info.get("size") == size >= 0:
            if info.get("mtime_ns") == mtime:
                return info
            sha = sha256_file(path)  # touched or copied: reuse when the bytes are the same
            if info.get("sha256") == sha:
                info["mtime_ns"] = mtime
                mark_done(out, info)
                return info
    info: dict = {"path": str(path), "order": order, "size": size, "mtime_ns": mtime,
                  "sha256": sha or (sha256_file(path) if size >= 0 else None), "format": MAP_FORMAT,
                  "evals_sha256": ctx.evals_sha256}
    rows: list[dict] = []
    rejects: list[dict] = []
    counts: Counter = Counter()
    dropped: Counter = Counter()
    bad: Counter = Counter()
    try:
        if size < 0:
            raise InputFileError(path, "file not found (was it moved after the inputs were listed?)")
        if size == 0:
            raise InputFileError(path, "empty file; re-download it or remove it from the input")
        for pos, rec in enumerate(iter_records(path, order, ctx.jats_options, ctx.parse_limits)):
            if isinstance(rec, Deletion):
                rows.append(_deletion_row(pos, rec))
                counts["deletions"] += 1
                continue
            if isinstance(rec, BadRecord):  # skipped, counted by reason, never fatal
                bad[rec.reason] += 1
                if ctx.rejects_dir is not None:
                    rejects.append({"id": None, "reason": f"bad_record:{rec.reason}", "file": rec.where, "title": ""})
                continue
            counts["parsed"] += 1
            doc = apply_meta(rec, meta) if meta else rec
            doc = clean_document(doc, ctx.clean_cfg)
            reason = apply_filters(doc, ctx.filters)
            if reason is None:
                rows.append(_doc_row(ctx, pos, doc, "doc", None))
            else:
                dropped[reason] += 1
                rows.append(_doc_row(ctx, pos, doc, "drop", reason))
                if ctx.rejects_dir is not None:
                    rejects.append({"id": doc.id, "reason": reason, "file": doc.file, "title": doc.title[:300]})
    except InputFileError as e:
        info.update(quarantined=e.reason, counts={}, dropped={})
        mark_done(out, info)
        return info
    table = pa.Table.from_pylist(rows, schema=MAP_SCHEMA)
    with atomic_path(out) as tmp:
        pq.write_table(table, tmp, compression="zstd", row_group_size=50_000, write_statistics=False)
    if ctx.rejects_dir is not None:
        rej = ctx.rejects_dir / f"{file_key(order, path)}.jsonl"
        atomic_write_text(rej, "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rejects))
    info.update(counts=dict(sorted(counts.items())), dropped=dict(sorted(dropped.items())))
    if bad:
        info["bad_records"] = dict(sorted(bad.items()))
    pause_point("map-file")  # the output is in place, its marker is not
    mark_done(out, info)
    return info


def _stat(path: Path) -> tuple[int, int | None]:
    """(size, mtime_ns), (-1, None) for a missing file."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return -1, None
    return st.st_size, st.st_mtime_ns


# ---- the stage ---------------------------------------------------------------------------------


def map_dirs(cfg: PrepConfig, generation: int = 1) -> tuple[Path, Path]:
    """(map output folder, rejects folder) of a generation: generation 1 (a plain run) uses
    `work/map` and `rejects/`, an appended generation g `work/gen-<g>/map` and `rejects/gen-<g>`."""
    rejects = cfg.out_path / "rejects"
    return gen_work_dir(cfg.out_path, generation) / "map", rejects if generation == 1 else rejects / gen_name(generation)


def map_context(cfg: PrepConfig, generation: int = 1, evals: EvalIndex | None = None) -> MapContext:
    """This run's map context: the filters and the evaluation index are built here, once per run
    (`evals`: an index already loaded by the caller)."""
    map_dir, rejects_dir = map_dirs(cfg, generation)
    if evals is None:
        evals = load_eval_sets(cfg.decontam, extra=extra_eval_sources(cfg))
    return MapContext(map_dir=map_dir,
                      rejects_dir=rejects_dir if cfg.rejects else None,
                      clean_cfg=cfg.clean, filters=build_filters(cfg.filter), jats_options=cfg.jats,
                      parse_limits=cfg.parse, val_fraction=cfg.split.val_fraction,
                      evals=None if evals.empty else evals.build(),
                      evals_sha256=None if evals.empty else evals.fingerprint())


# In a map worker process only: the context its pool was started with, keyed by the context's
# value (`MapContext.key`), so a job can never run with another run's filters or eval sets. The
# pool's initializer puts it here once: sending it with every job would pickle the eval index
# (and rebuild its n-gram table) once per file.
_WORKER_CONTEXTS: dict[str, MapContext] = {}


def _init_map_worker(ctx: MapContext) -> None:
    _WORKER_CONTEXTS.clear()
    _WORKER_CONTEXTS[ctx.key] = ctx


def _map_job(job: tuple[str, str, int, dict]) -> dict:
    key, path, order, meta = job
    return map_file(_WORKER_CONTEXTS[key], Path(path), order, meta)


def run_map(cfg: PrepConfig, inputs: list[InputFile], generation: int = 1) -> list[dict]:
    """Map this task's share of the inputs (`workers` processes); returns their marker records."""
    ctx = map_context(cfg, generation)
    ctx.map_dir.mkdir(parents=True, exist_ok=True)
    if ctx.rejects_dir is not None:
        ctx.rejects_dir.mkdir(parents=True, exist_ok=True)
    mine = [f for k, f in enumerate(inputs) if k % cfg.task.count == cfg.task.index]
    jobs = [(ctx.key, str(f.path), f.order, dict(f.meta or {})) for f in mine]
    infos: list[dict] = []
    bar = tqdm(total=len(jobs), desc="parse+clean+filter", unit="file", disable=not cfg.progress)

    def collect(info: dict) -> None:
        infos.append(info)
        bar.update(1)
        bar.set_postfix(records=sum(i.get("counts", {}).get("parsed", 0) for i in infos), refresh=False)
        pause_point(f"map:{len(infos)}")

    if cfg.workers <= 1 or len(jobs) <= 1:
        for _, path, order, meta in jobs:
            collect(map_file(ctx, Path(path), order, meta))
    else:
        mpctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
        with mpctx.Pool(min(cfg.workers, len(jobs)), initializer=_init_map_worker, initargs=(ctx,)) as pool:
            for info in pool.imap_unordered(_map_job, jobs):
                collect(info)
    bar.close()
    return infos


def map_outputs(cfg: PrepConfig, inputs: list[InputFile],
                generation: int = 1) -> tuple[list[tuple[int, Path]], list[dict], list[dict]]:
    """(map Parquet files in load order, input records for the manifest, quarantined files)."""
    map_dir = map_dirs(cfg, generation)[0]
    files, records, quarantined, missing = [], [], [], []
    for f in inputs:
        out = map_dir / f"{file_key(f.order, Path(f.path))}.parquet"
        if not is_done(out):
            missing.append(str(f.path))
            continue
        info = read_json(marker_path(out))
        # The path as listed now (the marker's may predate a move of the same files).
        records.append({"path": str(f.path), "order": f.order, "size": info["size"],
                        "sha256": info["sha256"], "records": info.get("counts", {}).get("parsed", 0),
                        "deletions": info.get("counts", {}).get("deletions", 0)})
        if info.get("bad_records"):
            records[-1]["bad_records"] = info["bad_records"]
        if "quarantined" in info:
            quarantined.append({"path": str(f.path), "reason": info["quarantined"]})
        else:
            files.append((f.order, out))
    if missing:
        raise PrepError(f"{cfg.out_dir}: {len(missing)} input file(s) have no finished map output "
                        f"(first: {missing[0]}); run the missing `stage=map task.index=...` tasks, or stage=all")
    return files, records, quarantined


def prune_map_outputs(cfg: PrepConfig, inputs: list[InputFile], generation: int = 1) -> int:
    """Delete map outputs (and rejects) of files that are no longer inputs (removed, renamed, or moved
    in the load order): they are never read, and would otherwise pile up. Only for a run that holds
    out_dir alone (array map tasks run side by side). Returns how many files were removed."""
    keys = {file_key(f.order, Path(f.path)) for f in inputs}
    map_dir, rejects_dir = map_dirs(cfg, generation)
    n = 0
    for folder, suffixes in ((map_dir, (".parquet", ".parquet.done")), (rejects_dir, (".jsonl",))):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            suffix = next((x for x in suffixes if p.name.endswith(x)), None)
            if suffix is not None and p.is_file() and p.name[: -len(suffix)] not in keys:
                p.unlink()
                n += 1
    return n
