"""Stage (b), merge: PubMed versions and deletions -> dedup -> decontaminate -> split -> Parquet.

Reads the per-file map outputs in load order, so the result is the same whatever the number of
map tasks or workers was. Two passes keep memory to the ids: the first resolves which record of
each id survives (events applied in (file order, position) order: a later record replaces an
earlier one, within one file the higher version wins, a deletion removes the id, a filtered-out
record is a tombstone that removes earlier versions too); the second streams the survivors' text
through dedup and decontamination into `documents/part-NNNNN.parquet`.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from common.atomic import atomic_path, atomic_write_json
from data_prep.config import PrepConfig
from data_prep.document import Document
from data_prep.pipeline.inputs import describe_change, input_set_sha256, inputs_changed
from data_prep.pipeline.manifest import drop_manifest
from data_prep.pipeline.markers import is_done, mark_done, marker_path, pause_point, read_json, sha256_file
from data_prep.pipeline.records import DOCUMENTS_SCHEMA, documents_row, row_document
from data_prep.sources.config import DemoSource
from data_prep.text.decontam import EvalSource, load_eval_sets
from data_prep.text.dedup import KeyWriter, merge_key_files
from data_prep.tokens.shards import split_of

log = logging.getLogger(__name__)

_KEY_COLUMNS = ["pos", "kind", "id", "version", "drop_reason"]


@dataclass
class Resolution:
    winners: dict[int, set[int]]  # file order -> positions of the records that survive
    counts: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)
    final: dict[str, str] | None = None  # id -> kind of its last event ("doc" | "drop" | "deletion"), if kept


def resolve_versions(map_files: list[tuple[int, Path]], keep_ids: bool = False) -> Resolution:
    """Which record of each id survives; see the module doc for the rules. `keep_ids`: also
    return every id's final kind (an append retires the earlier generations' copies of them)."""
    latest: dict[str, tuple[int, int, str, int, str | None]] = {}
    counts: Counter = Counter()
    for order, path in map_files:
        t = pq.read_table(path, columns=_KEY_COLUMNS).to_pydict()
        for pos, kind, doc_id, version, reason in zip(t["pos"], t["kind"], t["id"], t["version"],
                                                      t["drop_reason"], strict=True):
            prev = latest.get(doc_id)
            if kind == "deletion":
                counts["deletion_events"] += 1
                latest[doc_id] = (order, pos, kind, 0, None)
                continue
            counts["records"] += 1
            version = version or 1
            if prev is not None and prev[2] != "deletion":
                counts["superseded"] += 1
                if prev[0] == order and prev[3] > version:
                    continue  # an older version listed after a newer one in the same file
            latest[doc_id] = (order, pos, kind, version, reason)
    winners: dict[int, set[int]] = {}
    dropped: Counter = Counter()
    for order, pos, kind, _, reason in latest.values():
        if kind == "doc":
            winners.setdefault(order, set()).add(pos)
        elif kind == "drop":
            dropped[reason] += 1
        else:
            counts["deleted"] += 1
    counts["unique_ids"] = len(latest) - counts["deleted"]
    final = {doc_id: v[2] for doc_id, v in latest.items()} if keep_ids else None
    return Resolution(winners, counts, dropped, final)


def iter_survivors(map_files: list[tuple[int, Path]], res: Resolution) -> Iterator[Document]:
    """The surviving documents, in (file order, position) order."""
    for order, path in map_files:
        keep = res.winners.get(order)
        if not keep:
            continue
        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=4096):
            for row in batch.to_pylist():
                if row["kind"] != "doc" or row["pos"] not in keep:
                    continue
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


def run_merge(cfg: PrepConfig, map_files: list[tuple[int, Path]], inputs: list[dict]) -> dict:
    """Versions -> dedup -> decontamination -> split -> documents/; returns (and records) the counts.

    `inputs` is the input set (`pipeline.inputs.input_entries`) the map files come from. A finished
    merge is reused only for the same input set; for another one it is refused (`InputsChanged`),
    or redone with `overwrite=true`."""
    info_path = cfg.out_path / "work" / "merge.json"
    inputs_sha = input_set_sha256(inputs)
    if is_done(info_path):
        info = read_json(info_path)
        if info.get("inputs_sha256") == inputs_sha:
            return info
        recorded = info.get("inputs")
        change = (describe_change(recorded, inputs, with_sha=True) if isinstance(recorded, list) else None) \
            or "the finished merge has no record of its inputs (an out_dir of an older version)"
        if not cfg.overwrite:
            raise inputs_changed(cfg.out_dir, change)
        log.warning("%s: inputs changed (%s): rebuilding documents, tokenizer and shards (overwrite=true)",
                    cfg.out_dir, change)
        marker_path(info_path).unlink()
    drop_manifest(cfg.out_path)
    doc_dir = cfg.out_path / "documents"
    if doc_dir.exists():
        shutil.rmtree(doc_dir)  # leftovers of a killed merge: redo it whole
    res = resolve_versions(map_files)
    evals = load_eval_sets(cfg.decontam, extra=extra_eval_sources(cfg))
    is_duplicate = make_dedup(cfg, map_files, res)
    writer = DocumentsWriter(doc_dir, cfg.documents.rows_per_file, cfg.documents.row_group_size,
                             cfg.documents.compression.value)
    dup_reasons: Counter = Counter()
    decontaminated: dict[str, list[str]] = {}
    per_split: Counter = Counter()
    survivors = sum(len(v) for v in res.winners.values())
    bar = tqdm(total=survivors, desc="dedup+decontam", unit="doc", disable=not cfg.progress)
    for doc in iter_survivors(map_files, res):
        bar.update(1)
        reason = is_duplicate(doc)
        if reason is not None:
            dup_reasons[reason] += 1
            continue
        hit = evals.match(doc)
        if hit is not None:  # "eval:<set name>"
            decontaminated.setdefault(hit.removeprefix("eval:"), []).append(doc.id)
            continue
        split = split_of(doc.id, cfg.split.val_fraction)
        per_split[split] += 1
        writer.add(doc, split)
    bar.close()
    parts = writer.close()
    counts = dict(res.counts)
    counts.update(duplicates=sum(dup_reasons.values()),
                  decontaminated=sum(len(v) for v in decontaminated.values()),
                  kept=sum(per_split.values()), train_documents=per_split["train"], val_documents=per_split["val"])
    info = {"counts": counts, "dropped": dict(sorted(res.dropped.items())),
            "duplicates": dict(sorted(dup_reasons.items())),
            "decontaminated": {k: sorted(v) for k, v in sorted(decontaminated.items())},
            "decontam_summary": json.loads(json.dumps(evals.summary(), default=str)), "documents": parts,
            "inputs": inputs, "inputs_sha256": inputs_sha}
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


def make_dedup(cfg: PrepConfig, map_files: list[tuple[int, Path]], res: Resolution) -> Callable[[Document], str | None]:
    """`doc -> duplicate reason | None` from data_prep.text.dedup's plan over all survivors.

    One sorted key file per map output, then a streaming merge: memory holds one file's keys and
    the dropped ids, not the corpus. The plan depends only on the documents, not their order.
    """
    key_dir = cfg.out_path / "work" / "dedup"
    if key_dir.exists():
        shutil.rmtree(key_dir)
    key_dir.mkdir(parents=True)
    paths = []
    for order, path in tqdm(map_files, desc="dedup keys", unit="file", disable=not cfg.progress):
        w = KeyWriter()
        for doc in iter_survivors([(order, path)], res):
            w.add(doc)
        paths.append(key_dir / f"{path.stem}.keys")
        w.write(paths[-1])
    plan = merge_key_files(paths, cfg.dedup)
    return plan.check
