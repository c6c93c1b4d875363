"""Lightning's checkpoint IO plugin with atomic saves and weights-only loads.

Kept apart from checkpoint.py so that `load_model` (which eval/ imports) does not import Lightning.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from common.checkpoint import atomic_torch_save, safe_load

from .checkpoint import CheckpointWriteError

# torch's zip writer reports a short write (a full disk) as a RuntimeError without an errno.
_WRITE_FAILED = ("unexpected pos", "file write failed", "failed writing")


def tensor_bytes(obj: Any) -> int:
    """Bytes of the tensors in a checkpoint dict: about the space its file needs."""
    if isinstance(obj, torch.Tensor):
        return obj.nelement() * obj.element_size()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(tensor_bytes(v) for v in obj)
    return 0


def _free_bytes(folder: Path) -> int | None:
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def _write_error(path: Path, checkpoint: dict, cause: str) -> CheckpointWriteError:
    need, free = tensor_bytes(checkpoint), _free_bytes(path.parent)
    if free is not None and (cause == "ENOSPC" or free < need + 2**20):
        return CheckpointWriteError(
            f"{path}: no space left on the device (ENOSPC): the checkpoint needs about {need / 2**20:.1f} MiB, "
            f"{free / 2**20:.1f} MiB are free; the partial file was removed and the previous checkpoint is "
            "intact; free some space and rerun the same command (resume=auto continues from it)")
    return CheckpointWriteError(f"{path}: writing the checkpoint failed ({cause}); the partial file was removed "
                                "and the previous checkpoint is intact")


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO with atomic saves and weights-only loads; a failed write is one line."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options: Any | None = None) -> None:
        path = Path(path)
        try:
            atomic_torch_save(checkpoint, path)  # removes its temp file on any error
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise _write_error(path, checkpoint, "ENOSPC") from None
            raise CheckpointWriteError(f"{path}: writing the checkpoint failed ({e.strerror or e}); the partial "
                                       "file was removed and the previous checkpoint is intact") from None
        except RuntimeError as e:
            text = str(e)
            if not any(s in text for s in _WRITE_FAILED):
                raise
            raise _write_error(path, checkpoint, text.strip().splitlines()[0][:160]) from None

    def load_checkpoint(self, path, map_location: Any | None = None, weights_only: bool | None = None) -> dict:
        return safe_load(path, map_location or "cpu")
