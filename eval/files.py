"""Prediction files: `{"id": ..., "prediction": "<generated text>"}` per line, read with errors that
name `file:line`, written atomically (common.atomic)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from common.atomic import atomic_write_text
from tasks.base import DataFileError, text_prediction


def read_predictions(path: Path, read: Callable[[dict], Any] | None = None) -> dict[str, Any]:
    """{id: text}; ids compared as strings. `read` (the test set's `read_prediction`) turns a line
    into what it predicts, raising ValueError for a bad line; by default the "prediction" text."""
    if not path.is_file():
        raise DataFileError(path, "prediction file not found; pass predictions=<jsonl> with one "
                                  '{"id": ..., "prediction": "..."} object per line')
    out: dict[str, Any] = {}
    with open(path, "rb") as f:  # bytes: a bad byte is reported with its line, not as a traceback
        for n, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataFileError(f"{path}:{n}", f"not UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1}); "
                                                   "save the file as UTF-8") from None
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataFileError(f"{path}:{n}", f"not valid JSON ({e.msg}); fix or remove the line") from None
            if not isinstance(rec, dict) or "id" not in rec:
                raise DataFileError(f"{path}:{n}", 'each line needs "id" and "prediction" keys')
            if isinstance(rec["id"], bool) or not isinstance(rec["id"], str | int):
                raise DataFileError(f"{path}:{n}", f'"id" must be a string or an integer, got {type(rec["id"]).__name__}')
            try:
                value = (read or text_prediction)(rec)
            except ValueError as e:
                raise DataFileError(f"{path}:{n}", str(e)) from None
            key = str(rec["id"])
            if key in out:
                raise DataFileError(f"{path}:{n}", f"duplicate id {key!r}; keep one prediction per id")
            out[key] = value
    if not out:
        raise DataFileError(path, "no predictions (the file is empty); nothing to score")
    return out


def write_predictions(path: Path, items: Iterable[tuple[str, str]]) -> None:
    lines = [json.dumps({"id": i, "prediction": p}, ensure_ascii=False) for i, p in items]
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))
