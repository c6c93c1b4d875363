"""`manifest.json` (what went in, what came out, why anything was dropped) and the out_dir guard.

The keys train/eval rely on are in docs/architecture.md; docs/data_prep.md lists them all. The
manifest holds no timestamps or timings (those go to `summary.json`), so the same inputs and
config give a byte-identical manifest.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .errors import PrepError
from .stages import atomic_write_json, read_json

FORMAT_VERSION = 1
RUN_FILE = "run.json"  # written first: the config hash the out_dir belongs to
OWNED = ("work", "documents", "shards", "tokenizer", "rejects", "manifest.json", "summary.json",
         "doc_lengths.png", RUN_FILE)


class OutDirMismatch(PrepError):
    pass


def claim_out_dir(out_dir: Path, config_hash: str, overwrite: bool) -> None:
    """Refuse to mix outputs of two configs in one out_dir (or wipe it when overwrite=true)."""
    out_dir = Path(out_dir)
    run_file = out_dir / RUN_FILE
    if run_file.exists():
        previous = read_json(run_file).get("config_hash")
        if previous != config_hash:
            if not overwrite:
                raise OutDirMismatch(
                    f"{out_dir}: holds outputs of another config (config hash {str(previous)[:12]}, this run "
                    f"{config_hash[:12]}); choose another out_dir, or pass overwrite=true to delete them")
            for name in OWNED:
                p = out_dir / name
                if p.is_dir():
                    shutil.rmtree(p)
                elif p.exists():
                    p.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    if not run_file.exists():
        atomic_write_json(run_file, {"config_hash": config_hash, "format_version": FORMAT_VERSION})


def build_manifest(*, config_hash: str, config: dict, inputs: list[dict], tokenizer: dict, dtype: str,
                   splits: dict, documents: list[dict], counts: dict, dropped: dict,
                   decontaminated: dict, quarantined: list[dict], decontam_summary: dict | None = None) -> dict:
    all_ids = sorted({i for ids in decontaminated.values() for i in ids})
    return {
        "format_version": FORMAT_VERSION,
        "config_hash": config_hash,
        "config": config,
        "tokenizer": tokenizer,
        "dtype": dtype,
        "splits": splits,
        "documents": documents,
        "inputs": inputs,
        "counts": counts,
        "dropped": dropped,
        "decontaminated_ids": all_ids,
        "decontaminated_by_eval_set": decontaminated,
        "decontamination": decontam_summary or {},
        "quarantined": quarantined,
    }


def write_manifest(out_dir: Path, manifest: dict) -> Path:
    path = Path(out_dir) / "manifest.json"
    atomic_write_json(path, manifest)
    return path


def load_manifest(path: Path) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.json"
    if not path.is_file():
        raise PrepError(f"{path}: no manifest; the data_prep run did not finish (rerun it to resume)")
    return read_json(path)
