"""Preemption signals: who requeues (SIGUSR1 only, never SIGTERM) and signals during setup."""

from __future__ import annotations

import json
import os
import signal
from types import SimpleNamespace

import pytest

from .conftest import compose, tiny_overrides


@pytest.fixture
def scontrol(monkeypatch):
    """Records `scontrol` calls instead of running them, inside a pretend Slurm job 4242."""
    import train.run

    calls: list[list[str]] = []
    monkeypatch.setattr(train.run.subprocess, "run", lambda cmd, check=False: calls.append(cmd) or
                        SimpleNamespace(returncode=0))
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    return calls


def test_requeue_only_after_sigusr1(scontrol, monkeypatch):
    from train.run import requeue_after

    assert requeue_after(signal.SIGTERM, True) is False  # scancel must stay cancelled
    assert requeue_after(signal.SIGUSR1, False) is False  # the batch shell owns requeueing
    assert scontrol == []
    assert requeue_after(signal.SIGUSR1, True) is True
    assert scontrol == [["scontrol", "requeue", "4242"]]
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "77")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    assert requeue_after(signal.SIGUSR1, True) is True
    assert scontrol[-1] == ["scontrol", "requeue", "77_3"]  # the array task alone


def _signal_during_setup(monkeypatch, signum: int) -> None:
    import train.run

    build = train.run.build_datamodule

    def build_then_signal(*args, **kwargs):
        os.kill(os.getpid(), signum)  # arrives while data/model are being set up
        return build(*args, **kwargs)

    monkeypatch.setattr(train.run, "build_datamodule", build_then_signal)


@pytest.mark.parametrize(("signum", "requeued"), [(signal.SIGUSR1, True), (signal.SIGTERM, False)])
def test_signal_during_setup_exits_preempted(token_data, tmp_path, monkeypatch, scontrol, signum, requeued):
    from train.run import run

    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR1)}
    _signal_during_setup(monkeypatch, signum)
    result = run(compose(tiny_overrides(token_data, tmp_path, extra=("trainer.requeue_on_signal=true",))))
    assert (result.state, result.step, result.requeued) == ("preempted", 0, requeued)
    assert result.last_checkpoint is None and not (tmp_path / "checkpoints" / "last.ckpt").exists()
    status = json.loads((tmp_path / "status.json").read_text())
    assert (status["state"], status["signal"], status["during"]) == ("preempted", signum, "setup")
    assert scontrol == ([["scontrol", "requeue", "4242"]] if requeued else [])
    assert {s: signal.getsignal(s) for s in before} == before  # handlers given back


def test_signal_during_setup_keeps_existing_checkpoint(token_data, tmp_path, monkeypatch, scontrol):
    from train.run import run

    first = run(compose(tiny_overrides(token_data, tmp_path, steps=2)))
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    assert first.state == "completed" and ckpt.is_file()
    stamp = ckpt.stat().st_mtime_ns
    _signal_during_setup(monkeypatch, signal.SIGUSR1)
    again = run(compose(tiny_overrides(token_data, tmp_path, steps=4, extra=("trainer.requeue_on_signal=true",))))
    assert (again.state, again.step, again.requeued, again.last_checkpoint) == ("preempted", 2, True, ckpt)
    assert ckpt.stat().st_mtime_ns == stamp  # untouched: the requeued attempt resumes from it


@pytest.mark.parametrize("requeued", [True, False])
def test_main_exits_zero_only_when_requeued(tmp_path, monkeypatch, requeued):
    import train.__main__
    import train.run

    result = train.run.RunResult("preempted", 3, tmp_path, None, None, requeued)
    monkeypatch.setattr(train.__main__, "run", lambda cfg: result)
    main = train.__main__.main.__wrapped__  # the body under @hydra.main
    if requeued:  # SystemExit(0), not a return: submitit then waits for the requeued attempt
        with pytest.raises(SystemExit) as exc:
            main(None)
        assert exc.value.code == 0
    else:
        assert main(None) is None


def test_sigterm_while_lightning_starts_stops_after_one_step(token_data, tmp_path, monkeypatch, scontrol):
    """Between Lightning's handler registration and training start (dataloaders, restore)."""
    from train.data import PretrainDataModule
    from train.run import run

    loader = PretrainDataModule.train_dataloader

    def signal_then_load(self):
        os.kill(os.getpid(), signal.SIGTERM)
        return loader(self)

    monkeypatch.setattr(PretrainDataModule, "train_dataloader", signal_then_load)
    result = run(compose(tiny_overrides(token_data, tmp_path, extra=("trainer.requeue_on_signal=true",))))
    assert (result.state, result.step, result.requeued) == ("preempted", 1, False)
    assert result.last_checkpoint is not None and result.last_checkpoint.is_file()
    assert scontrol == []  # SIGTERM: never requeued
