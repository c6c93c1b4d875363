"""Faults injected into training runs: missing, truncated and tampered checkpoints, kill -9 in the
middle of a checkpoint write, a full disk while checkpointing, a second run into the same run_dir.

Once: `resume=auto` without `last.ckpt` restarted at step 0 and erased `metrics.csv`; a full disk
gave a torch traceback and left the partial file; `save_top_k=0` still wrote checkpoints under
`lightning_logs/`; two runs shared one run_dir."""

from __future__ import annotations

import csv
import os
import pickle
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from common.checkpoint import CheckpointError
from common.lock import LockedError
from tests.train.conftest import ROOT, compose, read_losses, tiny_overrides, write_token_data

pytestmark = pytest.mark.chaos

STEPS = 8  # validation (and best checkpoints) at steps 3 and 6, last.ckpt every 2 steps
ENV = {**os.environ, "WANDB_MODE": "disabled"}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_token_data(tmp_path_factory.mktemp("chaos_tokdata"))


def _run(data: Path, run_dir: Path, *extra: str, steps: int = STEPS):
    from train.run import run

    return run(compose(tiny_overrides(data, run_dir, steps, extra)))


@pytest.fixture(scope="module")
def finished(data, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    assert _run(data, run_dir).state == "completed"
    return run_dir


def _copy(finished: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(finished, dst)
    (dst / ".lock").unlink(missing_ok=True)
    return dst


def _rows(run_dir: Path) -> list[list[str]]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.reader(f))


def _best(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "checkpoints").glob("best-step=*.ckpt"))


def test_missing_last_ckpt_resumes_from_newest_best_and_keeps_history(finished, data, tmp_path, capfd):
    run_dir = _copy(finished, tmp_path)
    before = read_losses(run_dir)
    (run_dir / "checkpoints" / "last.ckpt").unlink()
    result = _run(data, run_dir)
    assert result.state == "completed" and result.step == STEPS
    err = capfd.readouterr().err
    assert "last.ckpt is missing; resuming from" in err and "best-step=6" in err and "(step 6)" in err, err
    after = read_losses(run_dir)
    assert sorted(after) == list(range(1, STEPS + 1))  # not restarted at 0, nothing lost or repeated
    assert all(abs(after[s] - before[s]) <= 1e-6 for s in before), (before, after)


def test_truncated_last_ckpt_is_skipped_with_its_reason(finished, data, tmp_path, capfd):
    run_dir = _copy(finished, tmp_path)
    last = run_dir / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    assert _run(data, run_dir).state == "completed"
    err = capfd.readouterr().err
    assert "resume=auto: last.ckpt: truncated or not a torch checkpoint" in err and "best-step=6" in err, err
    assert sorted(read_losses(run_dir)) == list(range(1, STEPS + 1))


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch /tmp/biogpt-pwned",))


def test_tampered_checkpoints_are_refused_in_one_line(finished, data, tmp_path):
    run_dir = _copy(finished, tmp_path)
    for p in (run_dir / "checkpoints").glob("*.ckpt"):
        p.write_bytes(pickle.dumps({"state_dict": {}, "x": _Payload()}))
    rows = _rows(run_dir)
    with pytest.raises(CheckpointError) as e:
        _run(data, run_dir)
    msg = str(e.value)
    assert "\n" not in msg and "no checkpoint there can be resumed" in msg and "last.ckpt:" in msg, msg
    assert "run_dir=<a new folder>" in msg
    assert _rows(run_dir) == rows  # history untouched
    # an explicit path to a tampered or truncated file: one line from the loader, no traceback
    with pytest.raises(CheckpointError, match="refusing to load|truncated|not a torch checkpoint"):
        _run(data, tmp_path / "other", f"resume={run_dir / 'checkpoints' / 'last.ckpt'}")


def test_fresh_start_into_a_used_run_dir_is_refused(finished, data, tmp_path):
    run_dir = _copy(finished, tmp_path)
    rows = _rows(run_dir)
    with pytest.raises(CheckpointError, match=r"holds an earlier run \(metrics.csv up to step 8; checkpoints "
                                              r".*resume=none.*run_dir=<a new folder>"):
        _run(data, run_dir, "resume=none")
    assert _rows(run_dir) == rows
    for p in (run_dir / "checkpoints").glob("*.ckpt"):  # every checkpoint missing: refused too
        p.unlink()
    with pytest.raises(CheckpointError, match="no checkpoint to resume from"):
        _run(data, run_dir)
    assert _rows(run_dir) == rows


def test_save_top_k_0_writes_checkpoints_in_one_place_only(data, tmp_path):
    run_dir = tmp_path / "run"
    _run(data, run_dir, "trainer.save_top_k=0", steps=4)
    # (lightning_logs/ itself may hold the csv logger's files; never a checkpoint)
    assert not list(run_dir.glob("lightning_logs/*/checkpoints"))
    assert sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*.ckpt")) == ["checkpoints/last.ckpt"]


HOLDER = textwrap.dedent("""
    import sys, time
    from common.lock import run_lock
    with run_lock(sys.argv[1], "train"):
        print("locked", flush=True)
        time.sleep(60)
""")


def test_second_run_into_a_busy_run_dir_fails_at_once_naming_the_holder(data, tmp_path):
    run_dir = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        t0 = time.monotonic()
        with pytest.raises(LockedError) as e:
            _run(data, run_dir)
        assert time.monotonic() - t0 < 10
        assert f"pid {holder.pid} on host {socket.gethostname()}" in str(e.value)
        assert not (run_dir / "metrics.csv").exists() and not (run_dir / "config.json").exists()
    finally:
        holder.kill()
        holder.wait()
    assert _run(data, run_dir, steps=2).state == "completed"  # the lock of a dead holder does not block


def test_cli_second_run_leaves_the_holders_hydra_record_alone(data, tmp_path):
    """Through `python -m train`: refused by the config check, before Hydra rewrites run_dir/.hydra."""
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text("the first run's record\n")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        p = subprocess.run([sys.executable, "-m", "train", *tiny_overrides(data, run_dir, 2)], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
        assert p.returncode != 0 and f"pid {holder.pid}" in p.stderr and "Traceback" not in p.stderr
        assert (run_dir / ".hydra" / "config.yaml").read_text() == "the first run's record\n"
        assert not (run_dir / ".hydra" / "overrides.yaml").exists()
    finally:
        holder.kill()
        holder.wait()


# Runs `python -m train` with the checkpoint writer killed (SIGKILL) half-way through writing
# last.ckpt at step 4: the temp file holds half the bytes, the previous last.ckpt is intact.
KILL_MID_WRITE = textwrap.dedent("""
    import io, os, runpy, signal, sys
    import torch
    import train.checkpoint_io as cio
    from common.atomic import atomic_path

    real = cio.atomic_torch_save

    def dying(obj, path):
        if obj.get("global_step") == 4 and str(path).endswith("last.ckpt"):
            buf = io.BytesIO()
            torch.save(obj, buf)
            with atomic_path(path) as tmp:
                tmp.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
                os.kill(os.getpid(), signal.SIGKILL)
        real(obj, path)

    cio.atomic_torch_save = dying
    sys.argv = ["train", *sys.argv[1:]]
    runpy.run_module("train", run_name="__main__", alter_sys=True)
""")


def test_kill_9_while_writing_a_checkpoint_then_resume_is_exact(finished, data, tmp_path):
    run_dir = tmp_path / "run"
    p = subprocess.run([sys.executable, "-c", KILL_MID_WRITE, *tiny_overrides(data, run_dir, STEPS)], cwd=ROOT,
                       env=ENV, capture_output=True, text=True, timeout=300)
    assert p.returncode == -9, p.stderr[-2000:]
    temps = list((run_dir / "checkpoints").glob(".last.ckpt.*.biogpt-tmp"))
    assert temps, "the kill should have left a partial temp file"
    assert _run(data, run_dir).state == "completed"
    assert not list(run_dir.rglob("*.biogpt-tmp"))
    ref, got = read_losses(finished), read_losses(run_dir)
    assert sorted(got) == list(range(1, STEPS + 1))
    assert all(abs(got[s] - ref[s]) <= 1e-6 for s in ref), (ref, got)


def test_disk_full_while_checkpointing(finished, data, tmp_path, tmpfs):
    ckpt_size = (finished / "checkpoints" / "last.ckpt").stat().st_size
    disk = tmpfs(int(ckpt_size * 1.5))  # room for one checkpoint, not for the next one beside it
    run_dir = disk.path / "run"
    p = subprocess.run([sys.executable, "-m", "train", *tiny_overrides(data, run_dir, STEPS)], cwd=ROOT, env=ENV,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 1, p.stderr[-2000:]
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "no space left on the device" in last, p.stderr[-2000:]
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    assert str(run_dir / "checkpoints") in last and "MiB" in last
    assert not list(run_dir.rglob("*.biogpt-tmp"))  # the partial file was removed
    disk.resize(ckpt_size * 20)  # space freed: the same command resumes and finishes
    assert _run(data, run_dir).state == "completed"
    assert sorted(read_losses(run_dir)) == list(range(1, STEPS + 1))

