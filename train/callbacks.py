"""Training control: per-step metrics (metrics.csv, loggers, MFU), `last.ckpt` refreshes, signal
handling for preemption, and fault injection for the resume tests.

Signals (Slurm preemption): SIGTERM or SIGUSR1 only sets a flag (`SignalFlag`, installed when
`run()` starts, so a signal during setup is not fatal either); at the end of the current
optimizer step every rank agrees to stop, `checkpoints/last.ckpt` is written, `status.json`
says `preempted`, and `python -m train` exits 0. Requeueing belongs to exactly one component:
with `trainer.requeue_on_signal=true` this process runs `scontrol requeue $SLURM_JOB_ID`
itself after SIGUSR1 (the time-limit warning; never after SIGTERM, which is how `scancel`
ends a job); otherwise the caller (the sbatch script's trap) does.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import time
from pathlib import Path

import lightning as L
import torch

from common.atomic import atomic_path, atomic_write_text
from common.checkpoint import LAST
from model.flops import flops_per_token, peak_bf16_flops

METRIC_FIELDS = ["step", "loss", "lr", "grad_norm", "tokens_per_s", "tokens_seen", "mfu", "time"]
VAL_FIELDS = ["step", "val_loss", "time"]
VAL_GEN_FIELDS = ["step", "generation", "val_loss", "time"]  # val_generations.csv: corpora with generations


def write_status(run_dir: Path, state: str, **extra) -> None:
    atomic_write_text(run_dir / "status.json", json.dumps({"state": state, "time": time.time(), **extra}, indent=2))


def _truncate_csv(path: Path, max_step: int) -> None:
    """Drop rows past `max_step`: a killed run may have logged steps after its last checkpoint."""
    if not path.is_file():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    keep = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= max_step]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        csv.writer(f).writerows(keep)


def _peak_flops(world_size: int) -> float | None:
    if not torch.cuda.is_available():
        return None
    peak = peak_bf16_flops(torch.cuda.get_device_name())
    return peak * world_size if peak else None


class SignalFlag:
    """Records SIGTERM / SIGUSR1 instead of dying; `install()` may be called again to take the
    signals back from handlers registered since (Lightning's), `restore()` puts the first ones back."""

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

    def __init__(self) -> None:
        self.received: int | None = None
        self._old: dict = {}

    def __call__(self, signum, frame) -> None:
        self.received = signum

    def install(self) -> SignalFlag:
        for sig in self.SIGNALS:
            handler = signal.getsignal(sig)
            if sig not in self._old:
                self._old[sig] = handler
            signal.signal(sig, self)
        return self

    def restore(self) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self._old = {}


class TrainingControl(L.Callback):
    def __init__(self, run_dir: str | Path, every_n_steps: int, seq_len: int, requeue_on_signal: bool = False,
                 sigkill_at_step: int | None = None, sigterm_at_step: int | None = None,
                 signals: SignalFlag | None = None, step_delay_s: float = 0.0):
        self.run_dir = Path(run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.every = every_n_steps
        self.seq_len = seq_len
        self.requeue_on_signal = requeue_on_signal
        self.sigkill_at_step, self.sigterm_at_step = sigkill_at_step, sigterm_at_step
        self.step_delay_s = step_delay_s
        self.signals = signals or SignalFlag()
        self.stopped_by_signal = False
        self._flops_per_token: float | None = None
        self._peak: float | None = None
        self._last_saved_step = -1
        self._t0 = time.time()

    # -- setup --------------------------------------------------------------------------------
    def on_train_start(self, trainer: L.Trainer, pl_module) -> None:
        # Reinstalled after Lightning's own handlers (registered before this hook) so ours win:
        # Lightning's SIGTERM path raises mid-step and its SLURM SIGUSR1 path requeues by itself.
        # A signal that arrived earlier (setup, checkpoint restore) is kept: the first step stops.
        self.signals.install()
        # A SIGTERM in that window also set Lightning's own flag (its handler chained to ours),
        # which would raise SIGTERMException after the step; our flag already stops the run cleanly.
        connector = getattr(trainer, "_signal_connector", None)
        if connector is not None and getattr(connector, "received_sigterm", False):
            connector.received_sigterm = False
        # the count bench_gpu_mfu.py uses too (character stage included)
        batch = getattr(trainer.datamodule, "batch_size", None) if trainer.datamodule is not None else None
        self._flops_per_token = flops_per_token(pl_module.model_config, self.seq_len, batch_size=batch)
        self._peak = _peak_flops(trainer.world_size)
        self._last_saved_step = trainer.global_step
        if trainer.is_global_zero:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            files = [("metrics.csv", METRIC_FIELDS), ("val_metrics.csv", VAL_FIELDS)]
            if len(getattr(trainer.datamodule, "val_names", ())) > 1:
                files.append(("val_generations.csv", VAL_GEN_FIELDS))
            for name, fields in files:
                path = self.run_dir / name
                _truncate_csv(path, trainer.global_step)
                if not path.is_file():
                    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
                        csv.writer(f).writerow(fields)
            write_status(self.run_dir, "running", step=trainer.global_step)

    @property
    def signal_received(self) -> int | None:
        return self.signals.received

    # -- every batch --------------------------------------------------------------------------
    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        stats, pl_module.last_step = pl_module.last_step, None
        if stats is None:  # accumulating, or a skipped (non-finite) step: nothing completed
            return
        step = trainer.global_step
        self._log_step(trainer, pl_module, step, stats)
        if self.step_delay_s > 0:
            time.sleep(self.step_delay_s)
        if self.sigterm_at_step is not None and step == self.sigterm_at_step and trainer.is_global_zero:
            # rank 0 only: the other ranks must learn of it through the all-reduce below
            os.kill(os.getpid(), signal.SIGTERM)
        stop = self.signal_received is not None
        if trainer.world_size > 1:
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if step % self.every == 0 or stop or step == self.sigkill_at_step:
            self.save_last(trainer)
        if step == self.sigkill_at_step:
            os.kill(os.getpid(), signal.SIGKILL)  # simulated crash, right after the checkpoint
        if stop:
            self.stopped_by_signal = True
            trainer.should_stop = True
            if trainer.is_global_zero:
                write_status(self.run_dir, "preempted", step=step, signal=self.signal_received or 0,
                             data_generations=pl_module.data_generations())

    def _log_step(self, trainer, pl_module, step: int, s: dict) -> None:
        tps = s["tokens"] / s["seconds"] if s["seconds"] > 0 else float("nan")
        mfu = tps * self._flops_per_token / self._peak if self._peak and self._flops_per_token else float("nan")
        values = {"train/lr": s["lr"], "train/grad_norm": s["grad_norm"], "train/tokens_per_s": tps,
                  "train/tokens_seen": float(pl_module.tokens_seen)}
        if self._peak:
            values["train/mfu"] = mfu
        for k, v in values.items():
            pl_module.log(k, v, on_step=True, prog_bar=k == "train/tokens_per_s", rank_zero_only=True)
        if trainer.is_global_zero:
            with open(self.run_dir / "metrics.csv", "a", newline="") as f:
                csv.writer(f).writerow([step, repr(s["loss"]), repr(s["lr"]), repr(s["grad_norm"]), f"{tps:.1f}",
                                        pl_module.tokens_seen, f"{mfu:.4f}", f"{time.time() - self._t0:.2f}"])

    def on_validation_end(self, trainer: L.Trainer, pl_module) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        val = trainer.callback_metrics.get("val/loss")
        now = f"{time.time() - self._t0:.2f}"
        if val is not None and (self.run_dir / "val_metrics.csv").is_file():
            with open(self.run_dir / "val_metrics.csv", "a", newline="") as f:
                csv.writer(f).writerow([trainer.global_step, repr(float(val)), now])
        names = getattr(trainer.datamodule, "val_names", ())[1:]  # val/loss_gen<g>
        if names and (self.run_dir / "val_generations.csv").is_file():
            with open(self.run_dir / "val_generations.csv", "a", newline="") as f:
                for name in names:
                    if (v := trainer.callback_metrics.get(name)) is not None:
                        csv.writer(f).writerow([trainer.global_step, name.removeprefix("val/loss_gen"), repr(float(v)), now])

    def on_train_end(self, trainer: L.Trainer, pl_module) -> None:
        if pl_module.diverged is None and not self.stopped_by_signal:
            self.save_last(trainer)
            if trainer.is_global_zero:
                write_status(self.run_dir, "completed", step=trainer.global_step,
                             data_generations=pl_module.data_generations())

    def save_last(self, trainer: L.Trainer) -> None:
        if trainer.global_step == self._last_saved_step and (self.ckpt_dir / LAST).is_file():
            return
        trainer.save_checkpoint(self.ckpt_dir / LAST, weights_only=False)  # full state, atomic (SafeCheckpointIO)
        self._last_saved_step = trainer.global_step
