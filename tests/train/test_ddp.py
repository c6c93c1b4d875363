"""DDP with 2 CPU processes (gloo): sharded data, a signal on rank 0 stops every rank at the same
step with one checkpoint, and the run resumes; a different world size is refused clearly."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest

from .conftest import ROOT, compose, read_losses, tiny_overrides


def _launch(overrides):
    return subprocess.run([sys.executable, "-m", "train", *overrides], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "WANDB_MODE": "disabled"}, timeout=300)


@pytest.mark.slow
def test_ddp_gloo_two_processes_preempt_and_resume(token_data, tmp_path):
    from common.checkpoint import safe_load
    from train.run import run
    from train.sampler import ResumeError

    ddp = ("strategy=ddp", "trainer.devices=2")
    first = _launch(tiny_overrides(token_data, tmp_path, 4, (*ddp, "debug.sigterm_at_step=2")))
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.count("preempted at step 2") == 2  # both ranks stopped at the same step
    ckpt = safe_load(tmp_path / "checkpoints" / "last.ckpt")
    sampler = ckpt["PretrainDataModule"]["sampler"]
    assert sampler["world_size"] == 2 and sampler["consumed"] == 2 * 4  # 2 steps x batch 4 per rank
    # every rank counts the whole step's tokens per corpus generation: 2 steps x 2 ranks x batch 4 x 32
    assert ckpt["biogpt_meta"]["data_generations"] == {"1": 2 * 2 * 4 * 32}

    second = _launch(tiny_overrides(token_data, tmp_path, 4, ddp))
    assert second.returncode == 0, second.stderr[-3000:]
    assert sorted(read_losses(tmp_path)) == [1, 2, 3, 4]
    with open(tmp_path / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert int(rows[-1]["tokens_seen"]) == 4 * 2 * 4 * 32  # steps x ranks x batch x seq_len

    # Same run_dir on one process: refused before training, naming both world sizes.
    with pytest.raises(ResumeError, match="2 data-parallel ranks, this run has 1"):
        run(compose(tiny_overrides(token_data, tmp_path, 6)))
