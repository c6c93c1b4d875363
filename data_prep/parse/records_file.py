"""Users' own corpora: JSONL (`.jsonl`, `.jsonl.gz`) and Parquet files of `{id, text, ...}` records.

Each record becomes a `Document` that goes through the same cleaning, filters, dedup,
decontamination, tokenizer and shards as PubMed/PMC XML. Fields:

- `id` (required, non-empty string or integer): kept as it is, so `pmid:123` is the same document
  as PubMed's record 123 (dedup by id, decontamination by PMID). A plain integer id, or one written
  `PMID:123`, is read as `pmid:123`; `pmcid:PMC123` likewise fills `pmcid`.
- `text` (required, non-empty string): what is tokenized.
- optional: `source` (default "jsonl"), `title`, `abstract`, `license`, `pmid`, `pmcid`, `doi`,
  `year`, `journal`, `language` (ISO 639-2/B like PubMed's; "" = unknown).

A line that is not JSON, not an object, or lacks a usable `id`/`text` is not fatal: it is yielded
as a `BadRecord(reason, where)`, which the map stage counts by reason (manifest `bad_records`).
An unreadable file (bad gzip, not Parquet) raises `InputFileError` and is quarantined whole.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from data_prep.document import Document
from data_prep.errors import InputFileError

RECORD_SUFFIXES = (".jsonl", ".jsonl.gz", ".parquet")
_PMID_RE = re.compile(r"(?i)^pmid:\s*(\d+)$")
_PMCID_RE = re.compile(r"(?i)^pmcid:\s*(?:PMC)?(\d+)$")
_STRING_FIELDS = ("title", "abstract", "license", "doi", "journal", "language")


@dataclass(frozen=True, slots=True)
class BadRecord:
    """A record that could not be read; `where` is `<file>:<line>` (or `<file>:row <n>`)."""

    reason: str
    where: str


def is_record_file(path: Path) -> bool:
    name = Path(path).name
    return name.endswith(RECORD_SUFFIXES) and not name.startswith(".")


def iter_record_file(path: Path, file_order: int = 0) -> Iterator[Document | BadRecord]:
    """Documents (and BadRecords) of one JSONL/JSONL.gz/Parquet file, in file order."""
    path = Path(path)
    if path.name.endswith(".parquet"):
        yield from _parquet(path, file_order)
    else:
        yield from _jsonl(path, file_order)


def _jsonl(path: Path, file_order: int) -> Iterator[Document | BadRecord]:
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            for n, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                where = f"{path}:{n}"
                try:
                    rec = json.loads(raw)
                except (UnicodeDecodeError, json.JSONDecodeError):
                    yield BadRecord("not_json", where)
                    continue
                yield _document(rec, where, str(path), file_order)
    except (OSError, EOFError, zlib.error) as e:  # a truncated or corrupt gzip stream
        raise InputFileError(path, f"unreadable ({type(e).__name__}: {e}); re-create or remove the file") from None


def _parquet(path: Path, file_order: int) -> Iterator[Document | BadRecord]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as e:
        raise InputFileError(path, f"not a readable Parquet file ({e})") from None
    names = set(pf.schema_arrow.names)
    if not {"id", "text"} <= names:
        raise InputFileError(path, f"Parquet columns {sorted(names)} lack 'id' and 'text'")
    row = 0
    for batch in pf.iter_batches(batch_size=10_000):
        for rec in batch.to_pylist():
            row += 1
            yield _document(rec, f"{path}:row {row}", str(path), file_order)


def _document(rec: object, where: str, file: str, file_order: int) -> Document | BadRecord:
    if not isinstance(rec, dict):
        return BadRecord("not_an_object", where)
    raw_id, text = rec.get("id"), rec.get("text")
    if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)) or not str(raw_id).strip():
        return BadRecord("missing_id", where)
    if not isinstance(text, str) or not text.strip():
        return BadRecord("missing_text", where)
    doc_id = str(raw_id).strip()
    pmid = _text(rec.get("pmid"))
    pmcid = _text(rec.get("pmcid"))
    if isinstance(raw_id, int) or doc_id.isdigit():
        doc_id = f"pmid:{doc_id}"
    if m := _PMID_RE.match(doc_id):
        doc_id, pmid = f"pmid:{m.group(1)}", pmid or m.group(1)
    elif m := _PMCID_RE.match(doc_id):
        doc_id, pmcid = f"pmcid:PMC{m.group(1)}", pmcid or f"PMC{m.group(1)}"
    fields = {k: _text(rec.get(k)) or "" for k in _STRING_FIELDS}
    year = rec.get("year")
    return Document(
        id=doc_id, text=text, source=_text(rec.get("source")) or "jsonl", title=fields["title"],
        # The abstract is what the no-abstract filter and the PubMed/PMC dedup look at: the text is it.
        abstract=fields["abstract"] or text, pmid=pmid, pmcid=pmcid, doi=fields["doi"] or None,
        license=fields["license"] or None, journal=fields["journal"], language=fields["language"],
        year=int(year) if isinstance(year, int) and not isinstance(year, bool) else None,
        file=file, file_order=file_order)


def _text(v: object) -> str | None:
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, (str, int)):
        return str(v).strip() or None
    return None
