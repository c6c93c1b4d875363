"""Exact resume: an interrupted run continues with the same per-step losses as an uninterrupted one.

Dropout is on (model.dropout=0.1) so the RNG stream must be restored too, and validation plus
top-k checkpointing run between steps, as in real runs.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .conftest import ROOT, compose, read_losses, tiny_overrides

N = 4
EXTRA = ("model.dropout=0.1",)  # the tiny preset has no dropout


def _run(data, run_dir, steps=2 * N, extra=()):
    from train.run import run

    return run(compose(tiny_overrides(data, run_dir, steps, EXTRA + tuple(extra))))


@pytest.fixture(scope="module")
def reference(token_data, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("reference")
    result = _run(token_data, run_dir)
    assert result.state == "completed" and result.step == 2 * N
    return read_losses(run_dir)


def _assert_same(reference: dict[int, float], got: dict[int, float]) -> None:
    assert sorted(got) == list(range(1, 2 * N + 1)), f"steps logged: {sorted(got)}"
    for step, loss in reference.items():
        assert abs(got[step] - loss) <= 1e-6, f"step {step}: {got[step]} vs uninterrupted {loss}"


def test_reference_run_learns(reference):
    assert reference[2 * N] < reference[1]


def test_clean_stop_then_resume_is_exact(token_data, tmp_path, reference):
    first = _run(token_data, tmp_path, extra=(f"debug.sigterm_at_step={N}",))
    assert first.state == "preempted" and first.step == N
    assert max(read_losses(tmp_path)) == N
    second = _run(token_data, tmp_path)  # resume=auto picks checkpoints/last.ckpt
    assert second.state == "completed" and second.step == 2 * N
    _assert_same(reference, read_losses(tmp_path))


def test_sigkill_then_resume_is_exact(token_data, tmp_path, reference):
    # A real crash: the process is SIGKILLed right after step N's checkpoint; it may have logged
    # nothing else, and the resumed run must drop nothing and repeat nothing.
    overrides = tiny_overrides(token_data, tmp_path, 2 * N, EXTRA + (f"debug.sigkill_at_step={N}",))
    proc = subprocess.run([sys.executable, "-m", "train", *overrides], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "WANDB_MODE": "disabled"}, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    second = _run(token_data, tmp_path)
    assert second.state == "completed"
    _assert_same(reference, read_losses(tmp_path))


def test_resume_with_workers_is_exact(token_data, tmp_path, reference):
    # The order comes from the main-process sampler, so workers change nothing, before or after.
    first = _run(token_data, tmp_path, extra=(f"debug.sigterm_at_step={N}", "data.num_workers=2"))
    assert first.state == "preempted"
    _run(token_data, tmp_path, extra=("data.num_workers=2",))
    _assert_same(reference, read_losses(tmp_path))


def test_stop_on_last_batch_of_epoch_resumes_into_next_epoch(token_data, tmp_path_factory):
    # 256-token windows: 57 windows / batch 4 = 14 batches per epoch; stop exactly on batch 14.
    extra = ("task.seq_len=256", "trainer.val_check_interval=100")
    ref, cut = tmp_path_factory.mktemp("epoch_ref"), tmp_path_factory.mktemp("epoch_cut")
    _run(token_data, ref, 17, extra)
    first = _run(token_data, cut, 17, (*extra, "debug.sigterm_at_step=14"))
    assert first.step == 14
    _run(token_data, cut, 17, extra)
    a, b = read_losses(ref), read_losses(cut)
    assert sorted(b) == list(range(1, 18))
    assert all(abs(a[s] - b[s]) <= 1e-6 for s in a), {s: (a[s], b[s]) for s in a if abs(a[s] - b[s]) > 1e-6}
