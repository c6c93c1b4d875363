"""Reading evaluation inputs (with errors that name the file) and writing outputs atomically."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from eval.errors import DataFileError

DATA_HINT = "set data_dir=<folder> (or BIOGPT_EVAL_DATA) to the folder holding pubmedqa/ and biogpt/"


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DataFileError(path, f"missing {what}; {DATA_HINT}")
    return path


def load_json(path: Path, what: str):
    require_file(path, what)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataFileError(path, f"not valid JSON ({e}); restore the original {what}") from e


def read_predictions(path: Path) -> dict[str, str]:
    """`{"id": ..., "prediction": "<generated text>"}` per line -> {id: text}; ids compared as strings."""
    if not path.is_file():
        raise DataFileError(path, "prediction file not found; pass predictions=<jsonl> with one "
                                  '{"id": ..., "prediction": "..."} object per line')
    out: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataFileError(f"{path}:{n}", f"not valid JSON ({e.msg}); fix or remove the line") from e
            if not isinstance(rec, dict) or "id" not in rec or "prediction" not in rec:
                raise DataFileError(f"{path}:{n}", 'each line needs "id" and "prediction" keys')
            if not isinstance(rec["prediction"], str):
                raise DataFileError(f"{path}:{n}", '"prediction" must be a string (the generated text)')
            key = str(rec["id"])
            if key in out:
                raise DataFileError(f"{path}:{n}", f"duplicate id {key!r}; keep one prediction per id")
            out[key] = rec["prediction"]
    return out


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def write_predictions(path: Path, items: Iterable[tuple[str, str]]) -> None:
    lines = [json.dumps({"id": i, "prediction": p}, ensure_ascii=False) for i, p in items]
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))
