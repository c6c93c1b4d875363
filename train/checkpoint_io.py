"""Lightning's checkpoint IO plugin with atomic saves and weights-only loads.

Kept apart from checkpoint.py so that `load_model` (which eval/ imports) does not import Lightning.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.plugins.io import TorchCheckpointIO

from common.checkpoint import atomic_torch_save, safe_load


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO with atomic saves and weights-only loads."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options: Any | None = None) -> None:
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(self, path, map_location: Any | None = None, weights_only: bool | None = None) -> dict:
        return safe_load(path, map_location or "cpu")
