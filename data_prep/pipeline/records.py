"""A `Document` as a Parquet row: the Arrow type of each stored field, written once.

Two tables store documents: the map outputs (`work/map/*.parquet`: every field, plus the
record's position, kind and drop reason) and the final `documents/part-*.parquet` (the fields a
user of the corpus needs, plus the split). Both schemas are built from `DOCUMENT_COLUMNS`.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pyarrow as pa

from data_prep.document import Document

# Document field -> Arrow type (`extra` is not stored: parser hints for the filters only).
DOCUMENT_COLUMNS: dict[str, pa.DataType] = {
    "id": pa.string(),
    "text": pa.string(),
    "source": pa.string(),
    "title": pa.string(),
    "abstract": pa.string(),
    "license": pa.string(),
    "pmid": pa.string(),
    "pmcid": pa.string(),
    "doi": pa.string(),
    "version": pa.int32(),
    "year": pa.int32(),
    "journal": pa.string(),
    "language": pa.string(),
    "publication_types": pa.list_(pa.string()),
    "mesh": pa.list_(pa.string()),
    "article_type": pa.string(),
    "file": pa.string(),
    "file_order": pa.int64(),
}
# Map outputs: every record of a file in file order ("doc" | "drop" tombstone | "deletion"), and
# what the merge needs of each record, computed by the map workers so the merge only compares
# fixed-size keys: `id_hash` (every row), and for "doc" rows the dedup text hash, the PMID as a
# number, the split and the evaluation set the document belongs to (`eval_set`, found by
# `eval_by` "pmid" | "text"; null for most).
MAP_FORMAT = 2  # a map output of another format is redone, not read
MAP_SCHEMA = pa.schema([("pos", pa.int64()), ("kind", pa.string()), ("drop_reason", pa.string()),
                        *DOCUMENT_COLUMNS.items(),
                        ("id_hash", pa.binary(16)), ("text_hash", pa.binary(16)), ("pmid_num", pa.int64()),
                        ("split", pa.string()), ("eval_set", pa.string()), ("eval_by", pa.string())])
# documents/part-*.parquet: the order of the first columns is what a reader sees first.
DOCUMENTS_FIELDS = ("id", "text", "source", "license", "split", "title", "pmid", "pmcid", "doi", "version", "year",
                    "journal", "language", "publication_types", "mesh", "article_type", "file")
DOCUMENTS_SCHEMA = pa.schema([(f, pa.string() if f == "split" else DOCUMENT_COLUMNS[f]) for f in DOCUMENTS_FIELDS])


def id_key(doc_id: str) -> bytes:
    """blake2b-128 of a document id: the merge resolves versions by sorting these (a collision
    among 10^9 ids has a probability of ~10^-21)."""
    return hashlib.blake2b(doc_id.encode("utf-8"), digest_size=16).digest()


def document_row(doc: Document) -> dict[str, Any]:
    """Every stored field of `doc` (tuples as lists, as Arrow wants them)."""
    row = {f: getattr(doc, f) for f in DOCUMENT_COLUMNS}
    row["publication_types"] = list(doc.publication_types)
    row["mesh"] = list(doc.mesh)
    return row


def documents_row(doc: Document, split: str) -> dict[str, Any]:
    """A row of documents/part-*.parquet: the file is named without its folder."""
    row = document_row(doc)
    row.update(split=split, file=os.path.basename(doc.file))
    return {f: row[f] for f in DOCUMENTS_FIELDS}


def row_document(row: dict[str, Any]) -> Document:
    """The Document a map-output row holds (nulls back to the record's defaults)."""
    return Document(
        id=row["id"], text=row["text"], source=row["source"], title=row["title"] or "",
        abstract=row["abstract"] or "", pmid=row["pmid"], pmcid=row["pmcid"], doi=row["doi"],
        version=row["version"] or 1, language=row["language"] or "", license=row["license"],
        publication_types=tuple(row["publication_types"] or ()), mesh=tuple(row["mesh"] or ()),
        journal=row["journal"] or "", year=row["year"], article_type=row["article_type"],
        file=row["file"] or "", file_order=row["file_order"] or 0)
