"""What `python -m train` prints: a progress bar over optimizer steps (to trainer.max_steps, with
ETA, tokens/s and loss) on a terminal, one plain line every `trainer.console_every_n_steps`
steps otherwise (a Slurm .out, a pipe), a line per validation; and Lightning's messages that say
nothing about this run silenced where they come from (`quiet_lightning`).

Lightning's own bars count batches per epoch ("Epoch 4/-2" with max_epochs=-1); ours counts the
steps the run is configured for, starting from the resumed step.
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from typing import Any, TextIO

import lightning as L


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")  # litlogger/litmodels advertisements


def quiet_lightning() -> None:
    """Silence the messages of a normal run that do not concern it (each named, nothing broad)."""
    # Lightning's SLURM detection warns whenever an `srun` binary exists and this process was not
    # started by srun: true of every local run on a cluster login node; Slurm jobs are detected.
    warnings.filterwarnings("ignore", message=r"The `srun` command is available on your system but is not used")
    # Lightning's pytree helper still uses torch's LeafSpec, deprecated in torch >= 2.9; harmless.
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        log = logging.getLogger(name)
        if not any(isinstance(f, _DropTips) for f in log.filters):
            log.addFilter(_DropTips())


def _hms(seconds: float) -> str:
    s = int(max(seconds, 0))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class StepProgress(L.Callback):
    """Progress by optimizer step. `bar`: a tqdm bar when `stream` is a terminal; plain lines
    every `every` steps when it is not (or when bar=False)."""

    def __init__(self, max_steps: int, every: int, bar: bool = True, stream: TextIO | None = None):
        self.max_steps, self.every = max_steps, every
        self.stream = stream or sys.stdout
        self.use_bar = bar and self.stream.isatty()
        self._bar: Any = None
        self._t0 = 0.0
        self._start_step = 0
        self._start_tokens = 0
        self._last_step = -1

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        self._t0 = time.monotonic()
        self._start_step = self._last_step = trainer.global_step
        self._start_tokens = int(getattr(pl_module, "tokens_seen", 0))
        if self.use_bar:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.max_steps, initial=trainer.global_step, unit="step", file=self.stream,
                             dynamic_ncols=True, desc="train", smoothing=0.1)

    def _rate(self, pl_module: L.LightningModule) -> float:
        dt = time.monotonic() - self._t0
        return (int(getattr(pl_module, "tokens_seen", 0)) - self._start_tokens) / dt if dt > 0 else 0.0

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        step = trainer.global_step
        if not trainer.is_global_zero or step == self._last_step:  # mid-accumulation, or a skipped step
            return
        self._last_step = step
        loss = trainer.callback_metrics.get("train/loss")
        loss_s = f"{float(loss):.4f}" if loss is not None else "-"
        tps = self._rate(pl_module)
        if self._bar is not None:
            self._bar.update(step - self._bar.n)
            self._bar.set_postfix_str(f"loss {loss_s}, {tps:,.0f} tok/s", refresh=False)
        elif step % self.every == 0 or step == self.max_steps:
            elapsed = time.monotonic() - self._t0
            done = step - self._start_step
            eta = elapsed / done * (self.max_steps - step) if done else 0.0
            print(f"step {step}/{self.max_steps} ({100 * step / self.max_steps:.0f}%) loss {loss_s} "
                  f"{tps:,.0f} tok/s elapsed {_hms(elapsed)} eta {_hms(eta)}", file=self.stream, flush=True)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        val = trainer.callback_metrics.get("val/loss")
        if not trainer.is_global_zero or val is None or trainer.sanity_checking:
            return
        line = f"step {trainer.global_step}: val/loss {float(val):.4f}"
        per_gen = [(name.removeprefix("val/loss_"), trainer.callback_metrics.get(name))
                   for name in getattr(getattr(trainer, "datamodule", None), "val_names", ())[1:]]
        if per_gen:  # a corpus with generations: val/loss_gen<g> of each
            line += " (" + ", ".join(f"{g} {float(v):.4f}" for g, v in per_gen if v is not None) + ")"
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self.on_train_end(trainer, pl_module)
