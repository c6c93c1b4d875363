"""Stage (a), one task per input file: parse -> apply source metadata -> clean -> filter.

Output per file, under `work/map/`: `<key>.parquet` with every record in file order (kept
candidates, filtered-out records as tombstones without text, and PubMed deletions), then the
completion marker `<key>.parquet.done` holding the counts and the input's size and sha256. A
file that raises `InputFileError` gets a marker that says so (it is quarantined) and no Parquet:
its partial output is discarded. The output depends only on the file and the config, never on
which task or worker ran it, which is what makes reruns and task counts byte-identical.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .document import Deletion, Document
from .errors import InputFileError
from .stages import atomic_path, is_done, mark_done, marker_path, read_json, sha256_file

MAP_SCHEMA = pa.schema([
    ("pos", pa.int64()),
    ("kind", pa.string()),  # "doc" | "drop" | "deletion"
    ("drop_reason", pa.string()),
    ("id", pa.string()),
    ("text", pa.string()),
    ("source", pa.string()),
    ("title", pa.string()),
    ("abstract", pa.string()),
    ("license", pa.string()),
    ("pmid", pa.string()),
    ("pmcid", pa.string()),
    ("doi", pa.string()),
    ("version", pa.int32()),
    ("year", pa.int32()),
    ("journal", pa.string()),
    ("language", pa.string()),
    ("publication_types", pa.list_(pa.string())),
    ("mesh", pa.list_(pa.string())),
    ("article_type", pa.string()),
    ("file", pa.string()),
    ("file_order", pa.int64()),
])
DOC_FIELDS = ("id", "text", "source", "title", "abstract", "license", "pmid", "pmcid", "doi", "version",
              "year", "journal", "language", "publication_types", "mesh", "article_type", "file", "file_order")
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


def _doc_row(pos: int, doc: Document, kind: str, reason: str | None) -> dict:
    row = {f: getattr(doc, f) for f in DOC_FIELDS}
    row["publication_types"] = list(doc.publication_types)
    row["mesh"] = list(doc.mesh)
    if kind == "drop":  # tombstone: the id still supersedes earlier versions; text is not needed
        row["text"] = row["title"] = row["abstract"] = None
    row.update(pos=pos, kind=kind, drop_reason=reason)
    return row


def _deletion_row(pos: int, d: Deletion) -> dict:
    return {"pos": pos, "kind": "deletion", "drop_reason": None, "id": f"pmid:{d.pmid}", "pmid": d.pmid,
            "source": "pubmed", "file": d.file, "file_order": d.file_order}


def iter_records(path: Path, order: int, jats_options: Any):
    from .formats import detect_format

    fmt = detect_format(path)
    if fmt == "pubmed":
        from .parse_pubmed import iter_pubmed

        return iter_pubmed(path, file_order=order)
    if fmt == "jats":
        from .parse_jats import iter_jats

        return iter_jats(path, jats_options, file_order=order)
    raise InputFileError(path, "root element is neither PubMed nor JATS XML; remove the file from the input")


@dataclasses.dataclass
class MapContext:
    """What a map worker needs (picklable: sent once per worker process)."""

    map_dir: Path
    rejects_dir: Path | None
    clean_cfg: Any
    filter_cfg: Any
    jats_options: Any


_FILTERS_CACHE: dict[int, Any] = {}


def _filters(ctx: MapContext):
    from .filters import build_filters

    key = id(ctx.filter_cfg)
    if key not in _FILTERS_CACHE:
        _FILTERS_CACHE[key] = build_filters(ctx.filter_cfg)
    return _FILTERS_CACHE[key]


def map_file(ctx: MapContext, path: Path, order: int, meta: dict) -> dict:
    """Run stage (a) on one file unless its marker exists; return the marker's content."""
    from .clean import clean_document
    from .filters import apply_filters

    path = Path(path)
    out = ctx.map_dir / f"{file_key(order, path)}.parquet"
    if is_done(out):
        info = read_json(marker_path(out))
        if info.get("size") == _size(path):
            return info
    filters = _filters(ctx)
    size = _size(path)
    info: dict = {"path": str(path), "order": order, "size": size, "sha256": sha256_file(path) if size >= 0 else None}
    rows: list[dict] = []
    rejects: list[dict] = []
    counts: Counter = Counter()
    dropped: Counter = Counter()
    try:
        if size < 0:
            raise InputFileError(path, "file not found (was it moved after the inputs were listed?)")
        if size == 0:
            raise InputFileError(path, "empty file; re-download it or remove it from the input")
        for pos, rec in enumerate(iter_records(path, order, ctx.jats_options)):
            if isinstance(rec, Deletion):
                rows.append(_deletion_row(pos, rec))
                counts["deletions"] += 1
                continue
            counts["parsed"] += 1
            doc = apply_meta(rec, meta) if meta else rec
            doc = clean_document(doc, ctx.clean_cfg)
            reason = apply_filters(doc, filters)
            if reason is None:
                rows.append(_doc_row(pos, doc, "doc", None))
            else:
                dropped[reason] += 1
                rows.append(_doc_row(pos, doc, "drop", reason))
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
        with atomic_path(rej) as tmp:
            tmp.write_text("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rejects),
                           encoding="utf-8")
    info.update(counts=dict(sorted(counts.items())), dropped=dict(sorted(dropped.items())))
    mark_done(out, info)
    return info


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return -1
