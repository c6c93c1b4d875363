"""Refuse to evaluate a checkpoint whose training documents include test-set PMIDs.

The training PMIDs come from the data folder's `documents/part-*.parquet` (columns `pmid`, `id`
and `split`; only `split == "train"` rows count), listed in its `manifest.json` under
`documents`. The manifest is found from the checkpoint's info (see `manifest_from_info`) or
given as `train_manifest=`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pyarrow.parquet as pq

from eval.config import REPO_ROOT
from eval.errors import ContaminationError, DataFileError

# Keys under which train/ may record where its data came from (first hit wins; train's
# `load_model` writes `data_manifest`).
INFO_KEYS = ("data_manifest", "manifest", "train_manifest", "data_dir", "data")


def _as_manifest(value) -> Path:
    p = Path(value)
    if not p.is_absolute() and not p.exists():
        p = REPO_ROOT / p  # train/ records paths as given on its command line (often repo-relative)
    return p if p.suffix == ".json" else p / "manifest.json"


def manifest_from_info(info: dict) -> Path | None:
    """The data manifest recorded in a checkpoint's info dict, if any (a folder means its manifest.json).

    train/'s `load_model` puts it in `info["data_manifest"]` (absolute, recorded at training time),
    which wins. Older checkpoints only carry the training config under `config`; its
    `task.data_dir` is the data_prep folder the model was trained (or, for fine-tuning, tokenized) from.
    """
    for key in INFO_KEYS:
        value = info.get(key)
        if isinstance(value, dict):  # e.g. {"data": {"dir": ..., "manifest": ...}}
            value = value.get("manifest") or value.get("dir") or value.get("data_dir")
        if isinstance(value, str | Path) and str(value):
            return _as_manifest(value)
    config = info.get("config") if isinstance(info.get("config"), dict) else {}
    task = config.get("task") if isinstance(config.get("task"), dict) else {}
    value = task.get("data_dir") or config.get("data_dir")
    return _as_manifest(value) if isinstance(value, str) and value else None


def training_pmids(manifest_path: Path) -> set[str]:
    """PMIDs of the documents in the training split of a data_prep output folder."""
    if manifest_path.is_dir():
        manifest_path = manifest_path / "manifest.json"
    if not manifest_path.is_file():
        raise DataFileError(manifest_path, "training data manifest not found; pass train_manifest=<data dir>/manifest.json "
                                           "(or allow_contaminated=true to skip the check)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataFileError(manifest_path, f"not valid JSON ({e.msg}); rerun data_prep") from e
    parts = manifest.get("documents")
    if not isinstance(parts, list):
        raise DataFileError(manifest_path, "has no 'documents' list, so the training PMIDs are unknown; "
                                           "rerun data_prep, or pass allow_contaminated=true")
    pmids: set[str] = set()
    for part in parts:
        path = manifest_path.parent / part["path"]
        if not path.is_file():
            raise DataFileError(path, f"document part listed in {manifest_path} is missing; rerun data_prep")
        names = set(pq.read_schema(path).names)
        cols = [c for c in ("id", "pmid", "split") if c in names]
        table = pq.read_table(path, columns=cols).to_pydict()
        n = len(table[cols[0]]) if cols else 0
        for i in range(n):
            if "split" in table and table["split"][i] not in (None, "train"):
                continue
            if table.get("pmid") and table["pmid"][i]:
                pmids.add(str(table["pmid"][i]))
            doc_id = table["id"][i] if "id" in table else None
            if doc_id and str(doc_id).startswith("pmid:"):
                pmids.add(str(doc_id)[5:])
    return pmids


def check(task: str, eval_pmids: Iterable[str], manifest_path: Path | None, allow: bool) -> list[str]:
    """Raise ContaminationError listing the overlap unless `allow`; returns the overlap (sorted)."""
    eval_set = {str(p) for p in eval_pmids}
    if not eval_set:
        return []
    if manifest_path is None:
        if allow:
            return []
        raise ContaminationError(
            f"cannot check {task} for contamination: the checkpoint records no training data manifest; "
            "pass train_manifest=<data dir>/manifest.json, or allow_contaminated=true")
    overlap = sorted(eval_set & training_pmids(manifest_path), key=lambda s: (len(s), s))
    if overlap and not allow:
        shown = ", ".join(overlap[:20]) + (f", ... ({len(overlap)} in all)" if len(overlap) > 20 else "")
        raise ContaminationError(
            f"{len(overlap)} {task} test PMIDs are in the training data of {manifest_path}: {shown}; "
            "rebuild the data with decontamination, or pass allow_contaminated=true to evaluate anyway")
    return overlap
