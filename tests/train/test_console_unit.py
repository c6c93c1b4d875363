"""train/console.py StepProgress on its own: a bar counting optimizer steps (from the resumed step)
on a terminal, plain lines every N steps otherwise; accumulation micro-batches print nothing."""

from __future__ import annotations

import io
from types import SimpleNamespace

import torch

from train.console import StepProgress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _drive(progress: StepProgress, start: int, steps: list[int]) -> None:
    trainer = SimpleNamespace(is_global_zero=True, global_step=start, sanity_checking=False,
                              callback_metrics={"train/loss": torch.tensor(2.5)})
    module = SimpleNamespace(tokens_seen=0)
    progress.on_train_start(trainer, module)
    for step in steps:
        trainer.global_step = step
        module.tokens_seen += 64
        progress.on_train_batch_end(trainer, module, None, None, 0)
    trainer.callback_metrics["val/loss"] = torch.tensor(2.25)
    progress.on_validation_end(trainer, module)
    progress.on_train_end(trainer, module)


def test_plain_lines_every_n_steps_when_not_a_terminal():
    out = io.StringIO()
    _drive(StepProgress(max_steps=8, every=4, stream=out), 2, [3, 3, 4, 5, 6, 7, 8])  # 3 twice: accumulation
    lines = out.getvalue().splitlines()
    assert [ln.split(" (")[0] for ln in lines[:2]] == ["step 4/8", "step 8/8"]
    assert "loss 2.5000" in lines[0] and " tok/s " in lines[0] and " eta " in lines[0]
    assert lines[2] == "step 8: val/loss 2.2500" and len(lines) == 3 and "Epoch" not in out.getvalue()


def test_bar_counts_steps_to_max_steps_on_a_terminal():
    out = Tty()
    _drive(StepProgress(max_steps=8, every=4, stream=out), 2, [3, 4, 5, 6, 7, 8])
    text = out.getvalue()
    assert "8/8" in text and "step/s" in text and "tok/s" in text and "loss 2.5000" in text
    assert "step 8: val/loss 2.2500" in text and "step 4/8 (" not in text  # no plain lines under a bar


def test_validation_line_shows_each_generation():
    out = io.StringIO()
    progress = StepProgress(max_steps=8, every=4, stream=out)
    metrics = {"val/loss": torch.tensor(2.25), "val/loss_gen1": torch.tensor(2.0), "val/loss_gen2": torch.tensor(3.5)}
    trainer = SimpleNamespace(is_global_zero=True, global_step=6, sanity_checking=False, callback_metrics=metrics,
                              datamodule=SimpleNamespace(val_names=["val/loss", "val/loss_gen1", "val/loss_gen2"]))
    progress.on_validation_end(trainer, SimpleNamespace(tokens_seen=0))
    assert out.getvalue() == "step 6: val/loss 2.2500 (gen1 2.0000, gen2 3.5000)\n"
