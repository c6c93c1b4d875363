"""Tiny CPU pretraining submitted through slurm/pretrain.sbatch and through the submitit launcher."""

from __future__ import annotations

import json
import math
import subprocess

import pytest

from .slurm_helpers import TINY_TRAIN, assert_completed, losses, tail

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
MAX_STEPS = int(next(o for o in TINY_TRAIN if o.startswith("trainer.max_steps=")).split("=")[1])


def test_pretrain_sbatch_runs_to_completion(reference_run):
    job, run_dir, recs = reference_run
    log = run_dir / f"slurm-{job}.out"
    assert_completed(recs, log)
    (rec,) = recs
    assert rec["NumTasks"] == "1" and rec["NumNodes"] == "1"  # trainer.devices=1 -> one task
    assert rec["Restarts"] == "0"
    assert json.loads((run_dir / "status.json").read_text())["state"] == "completed"
    rows = losses(run_dir)
    assert [s for s, _ in rows] == list(range(1, MAX_STEPS + 1)), tail(log)
    assert all(math.isfinite(v) for _, v in rows)
    assert rows[-1][1] < rows[0][1]  # it learned something
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert f"job {job} attempt 1" in log.read_text()


def test_pretrain_submitit_launcher_matches_sbatch_run(reference_run, background):
    """`python -m train -m hydra/launcher=slurm_local` submits, waits, and trains exactly the same
    run as the sbatch template; Hydra's files land under run_dir, not a timestamped folder."""
    proc, run_dir, cwd = background.launcher
    try:
        rc = proc.wait(timeout=300)
    except subprocess.TimeoutExpired:
        rc = None
    out = (cwd.parent / "launcher.log").read_text(errors="replace")[-4000:]
    assert rc == 0, f"python -m train -m hydra/launcher=slurm_local exited {rc}:\n{out}"
    jobs = sorted(p for p in (run_dir / ".submitit").iterdir() if p.is_dir())  # one folder per job id
    assert len(jobs) == 1, jobs
    script = next(jobs[0].glob("*_submission.sh")).read_text()
    # The batch script asks for what the config uses and for our signal, not submitit's USR2.
    assert "#SBATCH --ntasks-per-node=1" in script and "#SBATCH --nodes=1" in script
    assert "#SBATCH --signal=USR1@90" in script and "USR2" not in script
    assert "#SBATCH --requeue" in script
    assert json.loads((run_dir / "status.json").read_text())["state"] == "completed"
    assert (run_dir / ".hydra-job0" / ".hydra" / "config.yaml").is_file()
    assert not (cwd / "multirun").exists()
    _, ref_dir, _ = reference_run
    assert losses(run_dir) == losses(ref_dir)
