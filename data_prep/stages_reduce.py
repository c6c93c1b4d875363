"""Stage (b), merge: PubMed versions and deletions -> dedup -> decontaminate -> split -> Parquet.

Reads the per-file map outputs in load order, so the result is the same whatever the number of
map tasks or workers was. Two passes keep memory to the ids: the first resolves which record of
each id survives (events applied in (file order, position) order: a later record replaces an
earlier one, within one file the higher version wins, a deletion removes the id, a filtered-out
record is a tombstone that removes earlier versions too); the second streams the survivors' text
through dedup and decontamination into `documents/part-NNNNN.parquet`.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .document import Document
from .shards import split_of
from .stages import atomic_path, sha256_file

DOC_SCHEMA = pa.schema([
    ("id", pa.string()),
    ("text", pa.string()),
    ("source", pa.string()),
    ("license", pa.string()),
    ("split", pa.string()),
    ("title", pa.string()),
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
])

_KEY_COLUMNS = ["pos", "kind", "id", "version", "drop_reason"]


@dataclass
class Resolution:
    winners: dict[int, set[int]]  # file order -> positions of the records that survive
    counts: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)


def resolve_versions(map_files: list[tuple[int, Path]]) -> Resolution:
    """Which record of each id survives; see the module doc for the rules."""
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
    return Resolution(winners, counts, dropped)


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
                yield Document(
                    id=row["id"], text=row["text"], source=row["source"], title=row["title"] or "",
                    abstract=row["abstract"] or "", pmid=row["pmid"], pmcid=row["pmcid"], doi=row["doi"],
                    version=row["version"] or 1, language=row["language"] or "", license=row["license"],
                    publication_types=tuple(row["publication_types"] or ()), mesh=tuple(row["mesh"] or ()),
                    journal=row["journal"] or "", year=row["year"], article_type=row["article_type"],
                    file=row["file"] or "", file_order=row["file_order"] or 0)


class DocumentsWriter:
    """`documents/part-NNNNN.parquet`: fixed rows per file and per row group, deterministic bytes.

    pyarrow writes no timestamp into Parquet metadata; the writer version string is the only
    environment-dependent byte, and it is the same for the same pyarrow.
    """

    def __init__(self, folder: Path, rows_per_file: int, row_group_size: int, compression: str):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.rows_per_file = rows_per_file
        self.row_group_size = row_group_size
        self.compression = None if compression == "none" else compression
        self.rows: list[dict] = []
        self.parts: list[dict] = []

    def add(self, doc: Document, split: str) -> None:
        self.rows.append({
            "id": doc.id, "text": doc.text, "source": doc.source, "license": doc.license, "split": split,
            "title": doc.title, "pmid": doc.pmid, "pmcid": doc.pmcid, "doi": doc.doi, "version": doc.version,
            "year": doc.year, "journal": doc.journal, "language": doc.language,
            "publication_types": list(doc.publication_types), "mesh": list(doc.mesh),
            "article_type": doc.article_type, "file": os.path.basename(doc.file)})
        if len(self.rows) >= self.rows_per_file:
            self._write()

    def _write(self) -> None:
        path = self.folder / f"part-{len(self.parts):05d}.parquet"
        table = pa.Table.from_pylist(self.rows, schema=DOC_SCHEMA)
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp, row_group_size=self.row_group_size, compression=self.compression,
                           write_statistics=True, store_schema=True)
        self.parts.append({"path": f"{self.folder.name}/{path.name}", "rows": len(self.rows),
                           "sha256": sha256_file(path)})
        self.rows = []

    def close(self) -> list[dict]:
        if self.rows or not self.parts:
            self._write()
        return self.parts


def iter_documents(out_dir: Path, parts: list[dict], columns: list[str] | None = None,
                   batch_size: int = 4096) -> Iterator[dict[str, list[Any]]]:
    """Column batches (as dicts of lists) of the written documents, in order."""
    for part in parts:
        pf = pq.ParquetFile(Path(out_dir) / part["path"])
        for batch in pf.iter_batches(batch_size=batch_size, columns=columns):
            yield batch.to_pydict()


def assign_split(doc_id: str, val_fraction: float) -> str:
    return split_of(doc_id, val_fraction)
