"""Where training resumes from. Reading and writing checkpoint files is common/checkpoint.py
(Lightning-free, shared with eval/export/serve); Lightning's IO plugin is checkpoint_io.py."""

from __future__ import annotations

from pathlib import Path

from common.checkpoint import LAST, CheckpointError


def find_resume(run_dir: str | Path, resume: str) -> Path | None:
    """The checkpoint to resume from: `auto` -> run_dir/checkpoints/last.ckpt if present, `none` ->
    None, anything else is a path that must exist."""
    if resume == "none":
        return None
    if resume == "auto":
        p = Path(run_dir) / "checkpoints" / LAST
        return p if p.is_file() else None
    p = Path(resume)
    if not p.is_file():
        raise CheckpointError(f"resume={resume}: no such checkpoint (use resume=auto or resume=none)")
    return p
