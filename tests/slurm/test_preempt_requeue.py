"""Preemption: a running training job gets its signal, checkpoints, is requeued, resumes from the
checkpoint, and ends with exactly the per-step losses of an uninterrupted run.

(Named to run first in this folder: it is the longest, and the session's other jobs run meanwhile.)
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from .slurm_helpers import (
    TINY_TRAIN,
    assert_completed,
    job_records,
    last_step,
    losses,
    submit_pretrain,
    tail,
    wait_job,
)

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def requeue(job: str, attempts: int = 40) -> None:
    """`scontrol requeue`, retried while Slurm answers that the job is still completing."""
    for _ in range(attempts):
        r = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=30)
        if r.returncode == 0:
            return
        time.sleep(0.5)
    raise AssertionError(f"scontrol requeue {job} kept failing: {r.stderr.strip()}")


def test_signal_and_requeue_resume_with_identical_losses(demo_data, tmp_path, jobs, request):
    run_dir = tmp_path / "preempted"
    job = submit_pretrain([*TINY_TRAIN, f"task.data_dir={demo_data}", f"run_dir={run_dir}"])
    jobs.append(job)
    request.getfixturevalue("background")  # start the other tests' jobs behind this one
    log = run_dir / f"slurm-{job}.out"

    def restarts() -> int:
        recs = job_records(job)
        return int(recs[0].get("Restarts", 0)) if recs else 0

    # 1. What Slurm does 90 s before the time limit (--signal=B:USR1@90): SIGUSR1 to the batch
    #    shell, which forwards it through srun to the ranks; they save last.ckpt, the shell requeues.
    wait_job(job, timeout=180, log=log, until=lambda: last_step(run_dir) >= 2)
    subprocess.run(["scancel", "--signal=USR1", "--batch", job], check=True, timeout=30)
    wait_job(job, timeout=120, log=log, until=lambda: restarts() >= 1)
    first_stop = last_step(run_dir)
    assert first_stop < 12, "the signal came too late to test anything: the run had finished"

    # 2. A requeue from outside (admin, node drain, preemption with PreemptMode=REQUEUE): Slurm
    #    sends SIGTERM; training saves on it too, and Slurm brings the job back.
    wait_job(job, timeout=180, log=log, until=lambda: f"job {job} attempt 2" in tail(log, 400)
             and last_step(run_dir) >= first_stop + 1)
    requeue(job)

    recs = wait_job(job, timeout=240, log=log)
    assert_completed(recs, log)
    assert recs[0]["Restarts"] == "2", tail(log)
    text = log.read_text()
    assert f"job {job} attempt 3" in text
    assert text.count("Restored all states from the checkpoint") >= 2, tail(log, 200)
    assert json.loads((run_dir / "status.json").read_text())["state"] == "completed"
    # Same job, same run_dir: one metrics.csv whose rows are the uninterrupted run's, bit for bit.
    _, ref_dir, ref_recs = request.getfixturevalue("reference_run")
    assert_completed(ref_recs)
    assert losses(run_dir) == losses(ref_dir), tail(log, 100)


def test_scancel_cancels_after_a_checkpoint(demo_data, tmp_path, jobs):
    """SIGTERM from scancel makes the ranks checkpoint, but nothing requeues a cancelled job."""
    run_dir = tmp_path / "cancelled"
    job = submit_pretrain([*TINY_TRAIN, "trainer.max_steps=200", f"task.data_dir={demo_data}",
                           f"run_dir={run_dir}"])
    jobs.append(job)
    log = run_dir / f"slurm-{job}.out"
    wait_job(job, timeout=180, log=log, until=lambda: last_step(run_dir) >= 2)
    subprocess.run(["scancel", job], check=True, timeout=30)
    recs = wait_job(job, timeout=120, log=log)
    time.sleep(3)  # a wrongly issued requeue would show up within the scheduler's 2 s interval
    recs = job_records(job) or recs
    assert recs[0]["JobState"].startswith("CANCELLED") and recs[0]["Restarts"] == "0", tail(log)
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "preempted" and status["step"] < 200, tail(log)
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
