"""Checkpoint files without Lightning: atomic saves, loading that never runs code, and
`load_model` for everything that uses a trained model (eval, export, serve, fine-tuning).

Lightning checkpoints are torch.save pickles. We only ever read them with
`torch.load(weights_only=True)`, which accepts tensors and plain containers and refuses anything
that would import or call code, so a tampered or hostile file is an error, not an exploit.
Layout under run_dir: `checkpoints/last.ckpt` (newest, what `resume=auto` takes),
`checkpoints/best-step=N-val_loss=X.ckpt` (top-k by validation loss), `tokenizer.json`.
No Lightning import here (train's Lightning IO plugin is train/checkpoint_io.py).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from common.atomic import atomic_path

LAST = "last.ckpt"


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read safely (missing, truncated, tampered or from another format)."""


def safe_load(path: str | Path, map_location: Any = "cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{path}: refusing to load: it holds objects other than tensors and plain containers "
            f"({first}); the file may have been tampered with. Only load checkpoints you trust, "
            "written by this project") from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(e).__name__}: {str(e)[:200]}); "
                              "it is truncated or not a torch checkpoint") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CheckpointError(f"{path}: not a training checkpoint (no 'state_dict')")
    return ckpt


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    with atomic_path(path) as tmp:  # a SIGKILL mid-write leaves the previous file intact
        torch.save(obj, tmp)


def model_state(ckpt: dict) -> dict[str, torch.Tensor]:
    """The Decoder's weights from a Lightning checkpoint (the module holds it as `model`)."""
    sd = ckpt["state_dict"]
    out = {k.removeprefix("model.").replace("_orig_mod.", ""): v for k, v in sd.items() if k.startswith("model.")}
    if not out:
        raise CheckpointError("checkpoint state_dict has no 'model.*' weights")
    return out


def load_model(checkpoint_path: str | Path, map_location: str | torch.device = "cpu"):
    """(Decoder in eval mode, tokenizers.Tokenizer or None, info dict) from one of our checkpoints.

    info: step, tokens_seen, task, model_config (dict), config (the scrubbed training config),
    tokenizer_path, checkpoint, data_manifest (absolute path of the data_prep manifest.json the run
    read its data and tokenizer from, or None when the checkpoint does not say), data_generations
    (tokens trained on per corpus generation, {"1": n, ...}; None when the checkpoint has no record).
    """
    from model import Decoder, ModelConfig

    path = Path(checkpoint_path)
    ckpt = safe_load(path, map_location)
    meta = ckpt.get("biogpt_meta")
    if not isinstance(meta, dict) or "model_config" not in meta:
        raise CheckpointError(f"{path}: no 'biogpt_meta' section; not written by `python -m train`")
    model = Decoder(ModelConfig.from_mapping(meta["model_config"]))
    model.load_state_dict(model_state(ckpt))
    model.eval()
    tok, tok_path = None, None
    for cand in (path.parent.parent / "tokenizer.json", meta.get("tokenizer_path")):
        if cand and Path(cand).is_file():
            from tokenizers import Tokenizer

            tok_path = str(cand)
            tok = Tokenizer.from_file(tok_path)
            break
    info = {"step": ckpt.get("global_step", 0), "tokens_seen": meta.get("tokens_seen", 0),
            "task": meta.get("task"), "model_config": meta["model_config"], "config": meta.get("config", {}),
            "tokenizer_path": tok_path, "checkpoint": str(path), "data_manifest": _data_manifest(meta),
            "data_generations": meta.get("data_generations")}
    return model, tok, info


def _data_manifest(meta: dict) -> str | None:
    """Recorded at training time (absolute); older checkpoints only have the config's data_dir,
    taken as given (relative to the directory training ran in)."""
    if meta.get("data_manifest"):
        return str(meta["data_manifest"])
    task = meta.get("config", {}).get("task", {}) if isinstance(meta.get("config"), dict) else {}
    data_dir = task.get("data_dir") if isinstance(task, dict) else None
    return str(Path(data_dir) / "manifest.json") if data_dir else None
