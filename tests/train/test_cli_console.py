"""`python -m train` as a user runs it (issue 11): strict experiment names, Lightning values checked
before anything is written, a sweep's jobs in their own run directories, and a console that counts
optimizer steps, prints each message once and no unrelated warnings."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import ROOT, tiny_overrides

ENV = {**os.environ, "WANDB_MODE": "disabled", "PYTHONWARNINGS": "default"}


def _train(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "train", *args], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=timeout)


def test_misspelt_experiment_fails_listing_the_available_ones(tmp_path):
    p = _train("experiment=biogpt_4900", f"run_dir={tmp_path / 'run'}")
    assert p.returncode == 1
    assert "no experiment named 'biogpt_4900' (did you mean 'biogpt_4090'?); available: biogpt_4090," in p.stderr
    assert "Traceback" not in p.stderr and not (tmp_path / "run").exists()


@pytest.mark.parametrize(("args", "line"), [
    (("trainer.accelerator=gpu",), "config key 'trainer.accelerator': gpu but torch sees no CUDA GPU"),
    (("trainer.devices=0",), "config key 'trainer.devices'"),
    (("trainer.precision=16-mixed",), "config key 'trainer.precision': 16-mixed needs a GPU"),
    (("trainer.precision=fp16",), "trainer.precision"),
    (("strategy=fsdp", "trainer.devices=2"), "config key 'strategy': fsdp needs GPUs"),
])
def test_lightning_values_fail_before_anything_is_written(tmp_path, token_data, args, line):
    import torch

    if "gpu" in " ".join(args) and torch.cuda.is_available():
        pytest.skip("this machine has a GPU: accelerator=gpu is valid here")
    p = _train(f"run_dir={tmp_path / 'run'}", f"task.data_dir={token_data}", "task.vocab_size_from_tokenizer=true",
               "logger=csv", *args)
    assert p.returncode != 0 and line in p.stderr, p.stderr[-2000:]
    assert "Traceback" not in p.stderr and not (tmp_path / "run").exists()


def test_console_counts_steps_prints_once_and_no_unrelated_warnings(tmp_path, token_data):
    over = [o for o in tiny_overrides(token_data, tmp_path / "run", 6) if not o.startswith("trainer.progress_bar")]
    p = _train(*over, "trainer.console_every_n_steps=2")  # stdout is a pipe: plain lines
    assert p.returncode == 0, p.stderr[-2000:]
    out = p.stdout + p.stderr
    for step in (2, 4, 6):
        assert f"step {step}/6 (" in p.stdout and " tok/s " in p.stdout
    assert "step 3: val/loss " in p.stdout and "Epoch" not in out
    assert out.count("GPU available") == 1
    for noise in ("`srun` command is available", "LeafSpec", "Tip:", "litlogger"):
        assert noise not in out, noise


def test_two_job_sweep_gets_two_run_dirs(tmp_path, token_data):
    d = tmp_path / "sweep"
    over = [o for o in tiny_overrides(token_data, d, 3) if not o.startswith(("run_dir", "optim.lr"))]
    p = _train("-m", f"run_dir={d}", "optim.lr=1e-3,3e-3", *over, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    jobs = sorted(x for x in d.iterdir() if x.is_dir() and not x.name.startswith("."))
    assert [j.name.split("-", 1)[0] for j in jobs] == ["0", "1"]
    for job, lr in zip(jobs, (1e-3, 3e-3), strict=True):
        assert "optim.lr=" in job.name
        assert json.loads((job / "config.json").read_text())["optim"]["lr"] == lr
        steps = [ln.split(",")[0] for ln in (job / "metrics.csv").read_text().splitlines()[1:]]
        assert steps == ["1", "2", "3"]  # each job trained its own steps (none resumed the other's)
    assert not (d / "checkpoints").exists()
