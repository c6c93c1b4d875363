"""`manifest.json` (what went in, what came out, why anything was dropped) and the out_dir guard.

The keys train/eval rely on are in docs/architecture.md; docs/data_prep.md lists them all. The
manifest holds no timestamps or timings (those go to `summary.json`), so the same inputs and
config give a byte-identical manifest.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from common.atomic import atomic_write_json
from data_prep.errors import PrepError
from data_prep.pipeline.markers import read_json

FORMAT_VERSION = 1
RUN_FILE = "run.json"  # written first: the config hash the out_dir belongs to
OWNED = ("work", "documents", "shards", "tokenizer", "rejects", "index", "retired", "manifest.json", "summary.json",
         "doc_lengths.png", RUN_FILE)


class OutDirMismatch(PrepError):
    pass


def check_out_dir(out_dir: Path, config_hash: str, overwrite: bool) -> bool:
    """Whether `out_dir` holds outputs of another config; refuses them unless overwrite=true.

    Reads only, so `python -m data_prep` can call it before Hydra writes anything into out_dir."""
    run_file = Path(out_dir) / RUN_FILE
    if not run_file.exists():
        return False
    previous = read_json(run_file).get("config_hash")
    if previous == config_hash:
        return False
    if not overwrite:
        raise OutDirMismatch(
            f"{out_dir}: holds outputs of another config (config hash {str(previous)[:12]}, this run "
            f"{config_hash[:12]}); choose another out_dir, or pass overwrite=true to delete them")
    return True


def claim_out_dir(out_dir: Path, config_hash: str, overwrite: bool) -> None:
    """Refuse to mix outputs of two configs in one out_dir (or wipe it when overwrite=true).

    Only the pipeline's own outputs (`OWNED`) are deleted: a user's file in out_dir, the download
    cache and Hydra's record stay."""
    out_dir = Path(out_dir)
    run_file = out_dir / RUN_FILE
    if check_out_dir(out_dir, config_hash, overwrite):
        for name in OWNED:
            p = out_dir / name
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.exists() or p.is_symlink():
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


def drop_manifest(out_dir: Path) -> None:
    """Called before a stage rebuilds outputs the manifest describes: until the run writes a new
    one, no manifest is better than one that disagrees with the data."""
    (Path(out_dir) / "manifest.json").unlink(missing_ok=True)


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
