"""Where training resumes from, and whether a run may start in its run_dir at all. Reading and
writing checkpoint files is common/checkpoint.py (Lightning-free, shared with eval/export/serve);
Lightning's IO plugin is checkpoint_io.py.

`resume=auto` takes the newest *valid* checkpoint of run_dir/checkpoints: `last.ckpt`, or when it
is missing or unreadable the newest `best-*.ckpt` (they hold the full training state too), and
says which. A fresh start into a run_dir that already holds training history (metrics rows or
checkpoints) is refused: restarting from step 0 there would overwrite that history.
"""

from __future__ import annotations

import csv
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from common.checkpoint import LAST, CheckpointError

_BEST = re.compile(r"^best-step=(\d+)-.*\.ckpt$")


class CheckpointWriteError(CheckpointError):
    """A checkpoint could not be written (a full disk, a failed write); the message is one line."""


@dataclass
class ResumePlan:
    path: Path | None  # the checkpoint to continue from; None: start at step 0
    step: int = 0
    skipped: list[str] = field(default_factory=list)  # "<file>: <why>" for each unusable checkpoint
    note: str | None = None  # one line for the console when the choice is not the obvious one


def _probe(path: Path) -> int:
    """The global step of a checkpoint that holds a full training state; CheckpointError otherwise.

    mmap: only the pickle is read, not the tensors, so checking a 20 GB file costs little; loading
    with weights_only refuses a tampered pickle exactly as the real load will."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError:
        raise CheckpointError("holds objects other than tensors and plain containers (tampered?)") from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"truncated or not a torch checkpoint ({first})") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "loops" not in ckpt:
        raise CheckpointError("not a full training checkpoint (no state_dict/loops)")
    step = ckpt.get("global_step")
    if not isinstance(step, int) or step < 0:
        raise CheckpointError("no global_step")
    return step


def _candidates(ckpt_dir: Path) -> list[Path]:
    if not ckpt_dir.is_dir():
        return []
    found = [p for p in ckpt_dir.iterdir() if p.is_file() and (p.name == LAST or _BEST.match(p.name))]
    # last.ckpt first on equal steps: it is written at least as late as a best checkpoint
    return sorted(found, key=lambda p: (p.name != LAST, p.name))


def history_step(run_dir: Path) -> int:
    """The highest step logged in run_dir/metrics.csv (0 when there is none)."""
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return 0
    top = 0
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        for row in csv.reader(f):
            if row and row[0].isdigit():
                top = max(top, int(row[0]))
    return top


def plan_resume(run_dir: str | Path, resume: str) -> ResumePlan:
    """Where this run starts; raises CheckpointError (one line) when it must not start at all."""
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoints"
    if resume not in ("auto", "none"):
        p = Path(resume)
        if not p.is_file():
            raise CheckpointError(f"resume={resume}: no such checkpoint (use resume=auto or resume=none)")
        return ResumePlan(p)
    plan = ResumePlan(None)
    if resume == "auto":
        best: tuple[int, Path] | None = None
        for p in _candidates(ckpt_dir):
            try:
                step = _probe(p)
            except CheckpointError as e:
                plan.skipped.append(f"{p.name}: {e}")
                continue
            if best is None or step > best[0]:
                best = (step, p)
        if best is not None:
            plan.step, plan.path = best
            if plan.path.name != LAST or plan.skipped:
                why = "; ".join(plan.skipped) if plan.skipped else f"{LAST} is missing"
                plan.note = f"resume=auto: {why}; resuming from {plan.path} (step {plan.step})"
            return plan
    # A fresh start. Refused where it would overwrite an earlier run's history.
    logged = history_step(run_dir)
    ckpts = [p.name for p in _candidates(ckpt_dir)]
    if logged or ckpts:
        held = []
        if logged:
            held.append(f"metrics.csv up to step {logged}")
        if ckpts:
            held.append(f"checkpoints {', '.join(ckpts)}")
        why = (f"no checkpoint there can be resumed ({'; '.join(plan.skipped)})" if plan.skipped
               else "no checkpoint to resume from" if resume == "auto" else "resume=none")
        raise CheckpointError(
            f"{run_dir} holds an earlier run ({'; '.join(held)}) and {why}: starting at step 0 would overwrite "
            "its history. Start a new run with run_dir=<a new folder> (resume=none), or resume=<a checkpoint path>")
    return plan
