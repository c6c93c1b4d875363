"""`run(cfg)`: validate the config, build data + module + trainer, fit, and report.

Kept apart from the `@hydra.main` wrapper (`train/__main__.py`) so tests call it directly.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import warnings
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.environments import SLURMEnvironment
from lightning.pytorch.strategies import DDPStrategy, DeepSpeedStrategy, FSDPStrategy

import tasks
from common.atomic import atomic_path, atomic_write_text, remove_stale_temps
from common.config import ConfigError
from common.lock import run_lock
from model.block import Block
from tasks.base import Kind
from tasks.config import resolve_bench_dir

from .callbacks import SignalFlag, TrainingControl, write_status
from .checkpoint import plan_resume
from .checkpoint_io import SafeCheckpointIO
from .config import TrainConfig, build_config, check_hardware
from .console import StepProgress, quiet_lightning
from .data import PretrainDataModule
from .finetune_data import FinetuneDataModule, check_finetune_files
from .generations import GenerationPlan, plan_generations, seen_by_init
from .module import LMModule, TrainingDiverged
from .plot import plot_loss
from .tokenizer_io import decoded_vocab, run_tokenizer
from .tracking import build_logger, scrub


@dataclass
class RunResult:
    state: str  # completed | preempted | diverged
    step: int
    run_dir: Path
    best_checkpoint: str | None
    last_checkpoint: Path | None
    requeued: bool = False  # this process ran `scontrol requeue` (then `python -m train` exits 0 at once)


def build_strategy(cfg: TrainConfig):
    s = cfg.strategy
    if s.name == "auto":
        return "auto"
    backend = str(s.process_group_backend or ("gloo" if cfg.trainer.accelerator == "cpu" else "nccl"))
    if s.name == "ddp":
        return DDPStrategy(process_group_backend=backend, find_unused_parameters=s.find_unused_parameters)
    if s.name == "fsdp":
        return FSDPStrategy(auto_wrap_policy={Block}, sharding_strategy=str(s.sharding_strategy),
                            activation_checkpointing_policy={Block} if cfg.trainer.activation_checkpointing else None,
                            state_dict_type="full", process_group_backend=backend)
    strat = DeepSpeedStrategy(stage=s.stage, offload_optimizer=s.offload_optimizer,
                              offload_parameters=s.offload_parameters, process_group_backend=backend)
    # Manual optimization: the engine clips, so the clip value goes into its config.
    strat.config["gradient_clipping"] = cfg.trainer.gradient_clip_val or 0.0
    return strat


def build_datamodule(cfg: TrainConfig, tokenizer_file: Path, plan: GenerationPlan | None = None):
    t, d = cfg.task, cfg.data
    task = tasks.get(t.name)
    if task.kind is Kind.LANGUAGE_MODEL:
        return PretrainDataModule(t.data_dir, t.seq_len, d.batch_size, cfg.seed, d.num_workers, d.val_batches,
                                  d.pin_memory, plan)
    files = task.paths(resolve_bench_dir(t), t.files.overrides())
    return FinetuneDataModule(task.name, files["train"], files["val"], tokenizer_file, t.seq_len, d.batch_size,
                              cfg.seed, num_workers=d.num_workers, val_batches=d.val_batches, pin_memory=d.pin_memory)


def build_module(cfg: TrainConfig, vocab: list[str] | None, meta: dict[str, Any] | None = None) -> LMModule:
    mc = cfg.model_config()
    if vocab is not None and len(vocab) != mc.vocab_size:
        if cfg.task.init_from:  # the shape is the checkpoint's: only the tokenizer can be wrong
            raise ConfigError("task.tokenizer", f"has {len(vocab)} tokens but task.init_from={cfg.task.init_from} "
                              f"was trained with {mc.vocab_size}; leave task.tokenizer unset to use its own")
        raise ConfigError("model.vocab_size", f"{mc.vocab_size} but the tokenizer has {len(vocab)} tokens; "
                          f"set model.vocab_size={len(vocab)} (or task.vocab_size_from_tokenizer=true)")
    tr = cfg.trainer
    return LMModule(mc, cfg.optim, tr.max_steps, accumulate=tr.accumulate_grad_batches, clip=tr.gradient_clip_val,
                    max_nan_skips=tr.max_nan_skips, vocab=vocab, seed=cfg.seed, init_from=cfg.task.init_from,
                    meta=meta, debug=cfg.debug, compile=tr.compile, activation_checkpointing=tr.activation_checkpointing,
                    strategy=str(cfg.strategy.name), zero_stage=cfg.strategy.stage if cfg.strategy.name == "deepspeed" else 0)


def build_trainer(cfg: TrainConfig, run_dir: Path, logger, control) -> L.Trainer:
    tr = cfg.trainer
    callbacks: list = [control]
    if tr.save_top_k > 0:
        callbacks.append(ModelCheckpoint(dirpath=run_dir / "checkpoints", monitor="val/loss", mode="min",
                                         save_top_k=tr.save_top_k, auto_insert_metric_name=False,
                                         filename="best-step={step}-val_loss={val/loss:.4f}", save_last=False))
    if tr.progress_bar:  # ours counts optimizer steps to max_steps (Lightning's: batches per epoch)
        callbacks.append(StepProgress(tr.max_steps, tr.console_every_n_steps))
    plugins: list = [SafeCheckpointIO()]
    if SLURMEnvironment.detect():
        # Lightning's own SLURM handler would save an hpc checkpoint and requeue on SIGUSR1;
        # requeueing is ours (trainer.requeue_on_signal) or the sbatch script's, never both.
        plugins.append(SLURMEnvironment(auto_requeue=False))
    return L.Trainer(
        accelerator=str(tr.accelerator), devices=tr.devices, num_nodes=tr.num_nodes, precision=str(tr.precision),
        strategy=build_strategy(cfg), max_steps=tr.max_steps, max_epochs=-1,
        val_check_interval=tr.val_check_interval * tr.accumulate_grad_batches, check_val_every_n_epoch=None,
        num_sanity_val_steps=0, log_every_n_steps=tr.log_every_n_steps, logger=logger, callbacks=callbacks,
        plugins=plugins, default_root_dir=str(run_dir), use_distributed_sampler=False,
        # Off with save_top_k=0: Lightning would add its own ModelCheckpoint writing full checkpoints
        # under lightning_logs/; ours are written in run_dir/checkpoints only.
        enable_checkpointing=tr.save_top_k > 0,
        enable_progress_bar=False, enable_model_summary=False)


def is_launcher() -> bool:
    """Whether this process is global rank 0 as its launcher set it, before Lightning knows: a rank
    that Lightning spawned has LOCAL_RANK/NODE_RANK; srun starts every task itself (SLURM_PROCID)."""
    if "RANK" in os.environ:  # torchrun
        return int(os.environ["RANK"]) == 0
    if SLURMEnvironment.detect():
        return int(os.environ.get("SLURM_PROCID", "0")) == 0
    return int(os.environ.get("NODE_RANK", "0")) == 0 and int(os.environ.get("LOCAL_RANK", "0")) == 0


def requeue_after(signum: int | None, enabled: bool) -> bool:
    """`scontrol requeue` this Slurm job (or array task) if it was stopped by SIGUSR1 (the
    time-limit warning) and `trainer.requeue_on_signal` is on. Never after SIGTERM: that is
    `scancel` (or Slurm preempting/requeueing the job by itself), which a requeue would undo.
    Returns whether a requeue was issued and accepted."""
    if not enabled or signum != signal.SIGUSR1:
        return False
    job = os.environ.get("SLURM_ARRAY_JOB_ID")
    job = f"{job}_{os.environ['SLURM_ARRAY_TASK_ID']}" if job else os.environ.get("SLURM_JOB_ID")
    if not job:
        return False
    try:
        done = subprocess.run(["scontrol", "requeue", job], check=False)
    except OSError as e:  # no scontrol on this node: the job simply ends
        warnings.warn(f"scontrol requeue {job} failed ({e}); the job will not come back by itself", stacklevel=2)
        return False
    return done.returncode == 0


def run(cfg: Any) -> RunResult:
    """Train according to `cfg` (a Hydra/OmegaConf config, or a plain dict of the same shape)."""
    # First thing: from here on SIGTERM/SIGUSR1 only set a flag, also during setup.
    signals = SignalFlag().install()
    try:
        return _run(cfg, signals)
    finally:
        signals.restore()


def _stopped_in_setup(tc: TrainConfig, run_dir: Path, signals) -> RunResult:
    """A signal before training started: nothing new to save. A checkpoint from an earlier
    attempt (if any) stays what `resume=auto` continues from."""
    last = run_dir / "checkpoints" / "last.ckpt"
    step = 0
    try:
        step = int(json.loads((run_dir / "status.json").read_text())["step"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    rank_zero = int(os.environ.get("LOCAL_RANK", "0")) == 0 and int(os.environ.get("NODE_RANK", "0")) == 0
    requeued = False
    if rank_zero:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_status(run_dir, "preempted", step=step, signal=signals.received, during="setup")
        requeued = requeue_after(signals.received, tc.trainer.requeue_on_signal)
    return RunResult("preempted", step, run_dir, None, last if last.is_file() else None, requeued)


def _run(cfg: Any, signals) -> RunResult:
    quiet_lightning()
    tc = build_config(cfg)  # fails here, naming the key, before any work
    check_hardware(tc)  # accelerator/devices/precision this node can run, before anything is written
    run_dir = Path(tc.run_dir).resolve()
    with ExitStack() as stack:
        if is_launcher():
            # One run per run_dir, held by the launching process for the whole run (the ranks it
            # spawns, and srun's other tasks, work under it); a second run fails here naming it.
            stack.enter_context(run_lock(run_dir, "train"))
            remove_stale_temps(run_dir / "checkpoints")  # partial checkpoints of a killed run
        return _run_locked(tc, run_dir, signals)


def _run_locked(tc: TrainConfig, run_dir: Path, signals) -> RunResult:
    plan = plan_resume(run_dir, tc.resume)  # refuses a fresh start over an earlier run's history
    if plan.note and is_launcher():
        print(plan.note, file=sys.stderr, flush=True)
    resume_from = plan.path
    tok_file, tok, init = run_tokenizer(tc)  # task.init_from: its tokenizer and model shape
    vocab = decoded_vocab(tok)
    check_finetune_files(tc)  # a missing train/val file fails here, before anything is written
    # tokens per corpus generation task.init_from trained on (fine-tuning carries the record on)
    seen = seen_by_init(init.meta or {}, tc.task.data_dir) if init else {}
    data_plan = None
    if tasks.get(tc.task.name).kind is Kind.LANGUAGE_MODEL:
        # which corpus generations are new and which are replayed (continued pretraining)
        data_plan = plan_generations(tc.task.data_dir, tc.data.generations, tc.data.replay, seen, tc.task.init_from)
        if (len(data_plan.corpus) > 1 or seen) and is_launcher():
            print(data_plan.describe(), file=sys.stderr, flush=True)
    datamodule = build_datamodule(tc, tok_file, data_plan)
    if signals.received is not None:
        return _stopped_in_setup(tc, run_dir, signals)

    L.seed_everything(tc.seed, workers=True, verbose=False)
    resolved = scrub(tc.to_dict())
    rank_zero = int(os.environ.get("LOCAL_RANK", "0")) == 0 and int(os.environ.get("NODE_RANK", "0")) == 0
    if rank_zero:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.json", json.dumps(resolved, indent=2))
        if not (run_dir / "tokenizer.json").is_file():
            with atomic_path(run_dir / "tokenizer.json") as tmp:  # the run dir is self-contained for eval
                shutil.copyfile(tok_file, tmp)
    # data_manifest: absolute, so eval's contamination check finds the training data from any cwd
    manifest = str(Path(tc.task.data_dir).resolve() / "manifest.json") if tc.task.data_dir else None
    meta = {"config": resolved, "task": tc.task.name, "tokenizer_path": str(run_dir / "tokenizer.json"),
            "data_manifest": manifest,
            # tokens per corpus generation trained on before this run (this run's are added at each save)
            "data_generations": seen}
    if data_plan is not None:
        meta["data_plan"] = data_plan.to_dict()

    module = build_module(tc, vocab, meta)
    control = TrainingControl(run_dir, tc.trainer.checkpoint_every_n_steps, tc.task.seq_len,
                              tc.trainer.requeue_on_signal, tc.debug.sigkill_at_step, tc.debug.sigterm_at_step,
                              signals=signals, step_delay_s=tc.debug.step_delay_s)
    logger = build_logger(tc, run_dir, resolved)
    trainer = build_trainer(tc, run_dir, logger, control)
    if signals.received is not None:
        return _stopped_in_setup(tc, run_dir, signals)
    # Lightning warns that our dataloader "is not resumable" because it does not see a stateful
    # DataLoader; the position is restored by ResumableDataModule instead (see docs/training.md).
    warnings.filterwarnings("ignore", message=".*your dataloader is not resumable.*")
    trainer.fit(module, datamodule=datamodule, ckpt_path=str(resume_from) if resume_from else None)

    best = next((cb.best_model_path for cb in trainer.callbacks if hasattr(cb, "best_model_path")), None) or None
    last = run_dir / "checkpoints" / "last.ckpt"
    if trainer.is_global_zero:
        plot_loss(run_dir)
    if module.diverged:
        if trainer.is_global_zero:
            write_status(run_dir, "diverged", step=trainer.global_step, message=module.diverged)
        raise TrainingDiverged(module.diverged)
    state = "preempted" if control.stopped_by_signal else "completed"
    requeued = False
    if state == "preempted" and trainer.is_global_zero:
        requeued = requeue_after(signals.received, tc.trainer.requeue_on_signal)
    return RunResult(state, trainer.global_step, run_dir, best, last if last.is_file() else None, requeued)
