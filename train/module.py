"""The LightningModule: next-token loss (via the model's chunked LM-head cross-entropy),
AdamW + warmup/decay, accumulation, clipping and NaN/inf step skipping.

Optimization is manual so that a non-finite loss really skips the step: no backward, no
optimizer or scheduler update, no global-step increment (Lightning's automatic mode still steps
the optimizer and scheduler when `training_step` returns None, and refuses None under DDP).
The batch dict (`input_ids`, `labels` with -100 = ignored) is the only contract with the data.
"""

from __future__ import annotations

import math
import random
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import nn

from common.checkpoint import CheckpointError, model_state, safe_load
from common.config import ConfigError
from export import is_exported, load_exported
from model import Decoder, chunked_cross_entropy

from .config import DebugConfig, OptimConfig
from .generations import add_tokens
from .optim import build_optimizer, schedule_fn


@dataclass
class InitSource:
    """What fine-tuning takes from `task.init_from`: the model's shape and the tokenizer it was
    trained with (its vocabulary is the model's), so `task.data_dir` is only needed to pretrain."""

    path: str
    model_config: dict[str, Any]
    tokenizer_file: Path | None  # tokenizer.json beside the run (checkpoint) or recorded in it
    tokenizer: Any = None  # tokenizers.Tokenizer (an exported folder carries its own, no file)
    data_manifest: str | None = None  # the pretraining data's manifest.json (eval's contamination guard)
    meta: dict[str, Any] | None = None  # the checkpoint's biogpt_meta (None: an exported folder)


def read_init_source(path: str) -> InitSource:
    """Model config and tokenizer of a checkpoint of ours or of an exported folder. Raises
    CheckpointError (unreadable / not ours) or ConfigError naming task.init_from."""
    if is_exported(path):
        _, tok, info = load_exported(path)
        if tok is None:
            raise ConfigError("task.init_from", f"{path}: the exported folder has no tokenizer.json; "
                              "set task.tokenizer=<the tokenizer.json it was trained with>")
        return InitSource(path, info["model_config"], None, tok, info.get("data_manifest"), meta=info)
    p = Path(path)
    if p.is_dir():
        raise ConfigError("task.init_from", f"{path} is a folder without config.json; pass a .ckpt file "
                          "(e.g. <run_dir>/checkpoints/last.ckpt) or a folder written by `python -m export`")
    meta = safe_load(p).get("biogpt_meta")
    if not isinstance(meta, dict) or "model_config" not in meta:
        raise CheckpointError(f"{path}: no 'biogpt_meta' section; not written by `python -m train`")
    tok_file = None
    for cand in (p.parent.parent / "tokenizer.json", meta.get("tokenizer_path")):
        if cand and Path(cand).is_file():
            tok_file = Path(cand)
            break
    return InitSource(path, meta["model_config"], tok_file, data_manifest=meta.get("data_manifest"), meta=meta)


class TrainingDiverged(RuntimeError):
    """Too many non-finite losses: the run stopped and saved a checkpoint from before the bad steps."""


def _checkpointed_forward(block: nn.Module):
    inner = block.forward

    def forward(*args, **kwargs):
        return torch.utils.checkpoint.checkpoint(inner, *args, use_reentrant=False, **kwargs)

    return forward


class LMModule(L.LightningModule):
    def __init__(self, model_config, optim: OptimConfig, max_steps: int, *, accumulate: int = 1,
                 clip: float | None = 1.0, max_nan_skips: int = 10, vocab: list[str] | None = None,
                 seed: int = 0, init_from: str | None = None, meta: dict | None = None,
                 debug: DebugConfig | None = None, compile: bool = False, activation_checkpointing: bool = False,
                 strategy: str = "auto", zero_stage: int = 0):
        super().__init__()
        self.automatic_optimization = False
        self.model_config = model_config
        self.model = Decoder(model_config, seed=seed)
        if vocab is not None:
            self.model.attach_vocab(vocab)
        if init_from:
            self._init_weights_from(init_from)
        self.optim_cfg, self.max_steps = optim, max_steps
        self.accumulate, self.clip, self.max_nan_skips = accumulate, clip, max_nan_skips
        self.meta = dict(meta or {})
        self.debug = debug or DebugConfig()
        self.compile_model, self.activation_checkpointing = compile, activation_checkpointing
        self.strategy_name, self.zero_stage = strategy, zero_stage
        # counters that travel in the checkpoint
        self.nan_skips = 0
        self.batches_seen = 0
        self.tokens_seen = 0
        self.diverged: str | None = None
        self._pending_rng: dict | None = None
        # per-optimizer-step accumulators read by the metrics callback
        self._micro = 0
        self._acc_losses: list[torch.Tensor] = []
        self._acc_tokens = 0
        self.last_step: dict[str, float] | None = None
        self._step_t0: float | None = None

    # -- construction -------------------------------------------------------------------------
    def _init_weights_from(self, path: str) -> None:
        # an exported Hugging Face folder (python -m export) or one of our checkpoints
        state = load_exported(path)[0].state_dict() if is_exported(path) else model_state(safe_load(path))
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        # A pretrained checkpoint must cover every weight (vocabulary buffers may be re-attached).
        missing = [k for k in missing if not k.startswith(("embed.chars", "embed.starts_word", "embed.ends_word",
                                                           "embed.vocab_attached"))]
        if missing or unexpected:
            raise ValueError(f"task.init_from={path}: weights do not match model config "
                             f"(missing {missing[:5]}, unexpected {unexpected[:5]})")

    def configure_model(self) -> None:
        if self.activation_checkpointing and self.strategy_name != "fsdp":  # FSDP wraps blocks itself
            for block in self.model.blocks:
                block.forward = _checkpointed_forward(block)
        if self.zero_stage == 3:
            # The chunked loss reads the head weight outside the embedding's forward; ZeRO-3 must
            # gather it for the whole step. (Imported here: DeepSpeed is an optional extra.)
            import deepspeed

            deepspeed.zero.register_external_parameter(self, self.model.head_weight)
        if self.compile_model:
            for block in self.model.blocks:
                block.compile()

    def configure_optimizers(self):
        o = self.optim_cfg
        opt = build_optimizer(self.model, o.lr, o.weight_decay, o.betas, o.eps, o.fused)
        total = o.decay_steps or self.max_steps
        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule_fn(o.warmup_steps, total, o.schedule, o.min_lr_ratio))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # -- steps --------------------------------------------------------------------------------
    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self.model(batch["input_ids"], return_hidden=True)  # (B, T, C)
        return chunked_cross_entropy(hidden, self.model.head_weight, batch["labels"])

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self._pending_rng is not None:  # exact resume: the RNG stream continues where it stopped
            _set_rng(self._pending_rng)
            self._pending_rng = None
        # This batch counts as consumed from here on: a checkpoint taken at its end resumes after it.
        dm = self.trainer.datamodule
        if dm is not None:
            dm.advance(batch["input_ids"].shape[0])
        if self._micro == 0:
            self._step_t0 = time.perf_counter()

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor | None:
        opt = self.optimizers()
        sched = self.lr_schedulers()
        self.batches_seen += 1
        last_micro = self._micro + 1 == self.accumulate
        with opt.toggle_model(sync_grad=last_micro):
            loss = self.loss(batch)
            if self.batches_seen - 1 in self.debug.nan_at_batches:
                loss = loss * float("nan")
            finite = bool(torch.isfinite(loss.detach()).item())
            if self.trainer.world_size > 1:  # every rank must take the same branch
                finite = self.trainer.strategy.reduce_boolean_decision(finite, all=True)
            if not finite:
                self._skip_step(loss)
                return None
            self.manual_backward(loss / self.accumulate)
        self._acc_losses.append(loss.detach().float())
        self._acc_tokens += int(batch["input_ids"].numel())
        self._micro += 1
        if not last_micro:
            return loss.detach()
        grad_norm = self._clip_and_norm(opt)
        lr = opt.param_groups[0]["lr"]
        opt.step()
        opt.zero_grad(set_to_none=True)
        sched.step()
        world = self.trainer.world_size
        step_loss = torch.stack(self._acc_losses).mean()
        if world > 1:
            step_loss = self.trainer.strategy.reduce(step_loss, reduce_op="mean")
        tokens = self._acc_tokens * world
        self.tokens_seen += tokens
        self.last_step = {"loss": float(step_loss), "lr": float(lr), "grad_norm": float(grad_norm),
                          "tokens": tokens, "seconds": time.perf_counter() - (self._step_t0 or time.perf_counter())}
        self._micro, self._acc_losses, self._acc_tokens = 0, [], 0
        self.log("train/loss", step_loss, prog_bar=True, on_step=True, batch_size=batch["input_ids"].shape[0])
        return loss.detach()

    def _clip_and_norm(self, opt) -> float:
        max_norm = self.clip if self.clip else math.inf
        if self.strategy_name == "deepspeed":
            return float("nan")  # DeepSpeed clips inside its engine (gradient_clipping); norm logged by it
        if self.strategy_name == "fsdp":
            return float(self.trainer.model.clip_grad_norm_(max_norm))
        return float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm))

    def _skip_step(self, loss: torch.Tensor) -> None:
        self.optimizers().zero_grad(set_to_none=True)
        self._micro, self._acc_losses, self._acc_tokens = 0, [], 0
        self.nan_skips += 1
        step = self.global_step
        if self.nan_skips > self.max_nan_skips:
            path = Path(self.trainer.default_root_dir) / "checkpoints" / f"diverged-step{step}.ckpt"
            # Bad steps were never applied, so these weights are the ones from before them.
            self.trainer.save_checkpoint(path, weights_only=False)
            self.diverged = (f"loss was non-finite {self.nan_skips} times (trainer.max_nan_skips="
                             f"{self.max_nan_skips}), last at step {step}; stopped. Weights from before the bad "
                             f"step: {path}. Lower optim.lr, check the data, or raise trainer.max_nan_skips; "
                             f"continue with resume={path}")
            self.trainer.should_stop = True
        else:
            warnings.warn(f"step {step}: non-finite loss ({float(loss.detach())}); skipped this step "
                          f"({self.nan_skips}/{self.max_nan_skips} allowed)", RuntimeWarning, stacklevel=2)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        loss = self.loss(batch)
        # A corpus with generations has one val loader per generation after the whole split's
        # (PretrainDataModule.val_names): val/loss stays the whole split's, what checkpoints rank by.
        names = getattr(self.trainer.datamodule, "val_names", None) or ["val/loss"]
        self.log(names[dataloader_idx], loss, prog_bar=dataloader_idx == 0, sync_dist=True,
                 batch_size=batch["input_ids"].shape[0], add_dataloader_idx=False)
        return loss

    # -- checkpoint extras --------------------------------------------------------------------
    def data_generations(self) -> dict[str, int]:
        """Tokens trained on per corpus generation: task.init_from's record plus this run's."""
        dm = self._trainer.datamodule if self._trainer is not None else None
        return add_tokens(self.meta.get("data_generations") or {}, getattr(dm, "tokens_by_generation", None) or {})

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["biogpt_meta"] = {
            **self.meta,
            "data_generations": self.data_generations(),
            "model_config": self.model_config.to_dict(),
            "tokens_seen": self.tokens_seen,
            "nan_skips": self.nan_skips,
            "batches_seen": self.batches_seen,
            "rng": _get_rng(),
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        meta = checkpoint.get("biogpt_meta", {})
        self.tokens_seen = int(meta.get("tokens_seen", 0))
        self.nan_skips = int(meta.get("nan_skips", 0))
        self.batches_seen = int(meta.get("batches_seen", 0))
        self._pending_rng = meta.get("rng")


def _get_rng() -> dict:
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
             "python_version": random.getstate()[0], "python_gauss": random.getstate()[2]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((state["python_version"], tuple(state["python"]), state["python_gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
