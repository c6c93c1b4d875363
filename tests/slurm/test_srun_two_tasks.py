"""A 2-task job (srun -n 2, DDP over gloo on CPU) through slurm/pretrain_multinode.sbatch: the
stand-in for multi-node training, with ranks and rendezvous taken from Slurm by SLURMEnvironment."""

from __future__ import annotations

import json

import pytest

from .slurm_helpers import assert_completed, losses, wait_job

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def test_two_task_ddp_job(background):
    job, run_dir = background.ddp
    log = run_dir / f"slurm-{job}.out"
    recs = wait_job(job, timeout=300, log=log)
    assert_completed(recs, log)
    assert recs[0]["NumTasks"] == "2"  # --ntasks-per-node rendered from trainer.devices=2
    text = log.read_text()
    # Both ranks were started by srun (not spawned by Lightning) and joined one process group.
    assert "MEMBER: 1/2" in text and "MEMBER: 2/2" in text, text[-3000:]
    assert json.loads((run_dir / "status.json").read_text())["state"] == "completed"
    assert [s for s, _ in losses(run_dir)] == [1, 2, 3, 4]  # rank 0 alone writes metrics.csv
