"""The training app's configuration: typed dataclasses registered in Hydra's ConfigStore as the
schema of conf/train.yaml and its groups, and `check`, the one function for what a type cannot say.

conf/train.yaml composes on top of `train_schema` (`TrainConfig`), so every default is written
here once and a misspelled key, a wrong type or a value outside an enum fails while Hydra composes,
naming the key. `CheckConfig` (a Hydra callback) then runs `build_config` before Hydra creates the
run directory, so a bad range fails before anything is written. The `model` group's options are
model/config.py's presets, registered below with a schema generated from `ModelConfig`.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import sys
import typing
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from common.config import ConfigError, check_range
from common.hydra import build_schema, register_help_resolver
from common.hydra import omegaconf_error as config_error
from common.lock import LockedError, ensure_unlocked
from model.config import CHOICES, ModelConfig, ModelConfigError, presets
from tasks.base import Choice, Kind
from tasks.config import TaskConfig
from tasks.config import check as check_task

__all__ = ["ConfigError", "TrainConfig", "build_config", "check"]


class Schedule(Choice):
    cosine = "cosine"
    linear = "linear"
    constant = "constant"


class StrategyName(Choice):
    auto = "auto"  # one device, or DDP when several are asked for (Lightning's choice)
    ddp = "ddp"
    fsdp = "fsdp"
    deepspeed = "deepspeed"


class LoggerName(Choice):
    wandb = "wandb"
    csv = "csv"


class WandbMode(Choice):
    auto = "auto"  # online when logged in (WANDB_API_KEY or ~/.netrc), else offline
    online = "online"
    offline = "offline"
    disabled = "disabled"


# Lightning's spellings, which are not Python names: built with the functional API.
Accelerator = Choice("Accelerator", {v: v for v in ("cpu", "gpu", "cuda", "mps", "auto")})
Precision = Choice("Precision", {v: v for v in ("32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true")})
ShardingStrategy = Choice("ShardingStrategy", {v: v for v in ("FULL_SHARD", "SHARD_GRAD_OP", "NO_SHARD", "HYBRID_SHARD")})
ProcessGroupBackend = Choice("ProcessGroupBackend", {v: v for v in ("nccl", "gloo", "mpi")})


def _model_schema() -> type:
    """ModelConfig's fields as a Hydra schema: the same names, types and defaults (so nothing is
    written twice), with the CHOICES fields as enums so a bad value fails while composing."""
    hints = typing.get_type_hints(ModelConfig)
    fields = []
    for f in dataclasses.fields(ModelConfig):
        hint = hints[f.name]
        default: Any = f.default
        if f.name in CHOICES:
            choice = Choice(f"model_{f.name}", {v: v for v in CHOICES[f.name]})
            if f.name == "layer_pattern":  # a list of local/global, one per layer
                hint = list[choice] | None
            else:
                hint, default = choice, choice[f.default]
        fields.append((f.name, hint, field(default=default)))
    return dataclasses.make_dataclass("ModelSchema", fields)


ModelSchema = _model_schema()


def _preset_node(preset: dict[str, Any]):
    values = {k: (list(v) if isinstance(v, tuple) else v) for k, v in preset.items()}
    return OmegaConf.merge(OmegaConf.structured(ModelSchema), values)


@dataclass
class DataConfig:
    batch_size: int = 8  # micro-batch per device
    num_workers: int = 0
    val_batches: int = 8  # validation batches per evaluation (per device)
    pin_memory: bool = False
    # Continued pretraining on a corpus with several generations (docs/training.md): the generations
    # trained on as new; null = those task.init_from has not seen (a fresh run: all of them).
    generations: list[int] | None = None
    replay: float = 0.1  # fraction of every batch drawn from the other (older) generations; 0 = none


@dataclass
class OptimConfig:
    lr: float = 3e-4
    min_lr_ratio: float = 0.1  # the schedule ends at lr * min_lr_ratio
    weight_decay: float = 0.1  # matrices only; no decay on norms, biases, embeddings
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    eps: float = 1e-8
    warmup_steps: int = 100
    schedule: Schedule = Schedule.cosine
    decay_steps: int | None = None  # length of warmup+decay; null = trainer.max_steps
    fused: bool = False  # torch's fused AdamW (GPU only)


@dataclass
class TrainerConfig:
    accelerator: Accelerator = Accelerator["cpu"]
    devices: int = 1
    num_nodes: int = 1
    precision: Precision = Precision["32-true"]  # bf16-mixed on GPUs
    max_steps: int = 100
    accumulate_grad_batches: int = 1
    gradient_clip_val: float | None = 1.0  # global-norm clipping; 0 or null = off
    val_check_interval: int = 50  # optimizer steps between validations
    checkpoint_every_n_steps: int = 50  # `last.ckpt` refresh interval (also at the end and on signals)
    save_top_k: int = 2  # best checkpoints by val/loss (0 = none)
    max_nan_skips: int = 10  # non-finite losses tolerated before the run stops
    requeue_on_signal: bool = False  # true: `scontrol requeue` after a SIGUSR1 save
    compile: bool = False
    activation_checkpointing: bool = False
    progress_bar: bool = True  # a step bar on a terminal; false: no per-step console output at all
    console_every_n_steps: int = 50  # output not a terminal (Slurm .out, pipe): one line every N steps
    log_every_n_steps: int = 1  # Lightning's logger (wandb) interval; metrics.csv has every step


@dataclass
class StrategyConfig:
    name: StrategyName = StrategyName.auto
    process_group_backend: ProcessGroupBackend | None = None  # null = nccl on GPU, gloo on CPU
    find_unused_parameters: bool = False
    sharding_strategy: ShardingStrategy = ShardingStrategy["FULL_SHARD"]  # fsdp
    stage: int = 2  # deepspeed ZeRO stage
    offload_optimizer: bool = False  # deepspeed
    offload_parameters: bool = False  # deepspeed


@dataclass
class LoggerConfig:
    name: LoggerName = LoggerName.wandb  # metrics.csv in run_dir is written either way
    project: str = "biogpt-healthcare"
    entity: str | None = None
    mode: WandbMode = WandbMode.auto  # WANDB_MODE overrides
    tags: list[str] = field(default_factory=list)
    group: str | None = None


@dataclass
class DebugConfig:
    """Fault injection for tests and drills (never set in shipped experiments)."""

    nan_at_batches: list[int] = field(default_factory=list)  # training batch indices whose loss becomes NaN
    sigkill_at_step: int | None = None  # SIGKILL this process after this optimizer step's checkpoint
    sigterm_at_step: int | None = None  # send SIGTERM to this process after this optimizer step
    # Sleep after every optimizer step: keeps a tiny test run alive long enough for an external
    # signal (Slurm preemption tests) whatever the machine's speed. Changes no result.
    step_delay_s: float = 0.0


@dataclass
class TrainConfig:
    run_dir: str = "runs/train"  # stable across requeues: checkpoints/, metrics.csv, status.json live here
    resume: str = "auto"  # auto (checkpoints/last.ckpt in run_dir if present) | none | <checkpoint path>
    seed: int = 1234
    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelSchema = field(default_factory=ModelSchema)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    debug: DebugConfig = field(default_factory=DebugConfig)

    @classmethod
    def from_omegaconf(cls, cfg: Any) -> TrainConfig:
        return build_config(cfg)

    def model_config(self) -> ModelConfig:
        try:
            return ModelConfig.from_mapping(plain(dataclasses.asdict(self.model)))
        except ModelConfigError as e:
            raise ConfigError(f"model.{e.key}", e.reason) from None

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (enums as their strings): config.json, loggers and checkpoints hold it."""
        return plain(dataclasses.asdict(self))


def plain(obj: Any) -> Any:
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    return obj


cs = ConfigStore.instance()
cs.store(name="train_schema", node=TrainConfig)
for _name, _preset in presets.items():
    cs.store(group="model", name=_name, node=_preset_node(_preset))


def check(tc: TrainConfig) -> None:
    """Everything a type cannot say, in one place: the range of every number, then cross-field rules."""
    task = check_task(tc.task)
    if not task.trainable:
        raise ConfigError("task", f"task {task.name} has nothing to train on; use pretrain or a benchmark")
    if not tc.run_dir:
        raise ConfigError("run_dir", "must be set (a stable directory: resume looks for checkpoints there)")
    check_range("seed", tc.seed, 0, 2**32 - 1)
    d, o, tr, s, dbg = tc.data, tc.optim, tc.trainer, tc.strategy, tc.debug
    check_range("data.batch_size", d.batch_size, 1)
    check_range("data.num_workers", d.num_workers, 0)
    check_range("data.val_batches", d.val_batches, 1)
    check_range("data.replay", d.replay, 0, 1, hi_open=True)
    if d.generations is not None:
        if not d.generations:
            raise ConfigError("data.generations", "is empty; name at least one generation, or null for auto")
        for i, g in enumerate(d.generations):
            check_range(f"data.generations[{i}]", g, 1)
    check_range("optim.lr", o.lr, 0, 1, lo_open=True)
    check_range("optim.min_lr_ratio", o.min_lr_ratio, 0, 1)
    check_range("optim.weight_decay", o.weight_decay, 0, 1)
    if len(o.betas) != 2:
        raise ConfigError("optim.betas", f"needs 2 values (beta1, beta2), got {len(o.betas)}")
    for i, beta in enumerate(o.betas):
        check_range(f"optim.betas[{i}]", beta, 0, 1, hi_open=True)
    check_range("optim.eps", o.eps, 0, 1, lo_open=True)
    check_range("optim.warmup_steps", o.warmup_steps, 0)
    check_range("optim.decay_steps", o.decay_steps, 1, allow_none=True)
    for key in ("devices", "num_nodes", "max_steps", "accumulate_grad_batches", "val_check_interval",
                "checkpoint_every_n_steps", "log_every_n_steps", "console_every_n_steps"):
        check_range(f"trainer.{key}", getattr(tr, key), 1)
    check_range("trainer.gradient_clip_val", tr.gradient_clip_val, 0, allow_none=True)
    check_range("trainer.save_top_k", tr.save_top_k, 0)
    check_range("trainer.max_nan_skips", tr.max_nan_skips, 0)
    check_range("strategy.stage", s.stage, 1, 3)
    for i, batch in enumerate(dbg.nan_at_batches):
        check_range(f"debug.nan_at_batches[{i}]", batch, 0)
    check_range("debug.sigkill_at_step", dbg.sigkill_at_step, 1, allow_none=True)
    check_range("debug.sigterm_at_step", dbg.sigterm_at_step, 1, allow_none=True)
    check_range("debug.step_delay_s", dbg.step_delay_s, 0)
    # cross-field rules
    # Fine-tuning takes the tokenizer from task.init_from (or task.tokenizer); only pretraining
    # reads shards, so only it needs the data_prep folder.
    if not tc.task.data_dir and (task.kind is Kind.LANGUAGE_MODEL or not (tc.task.tokenizer or tc.task.init_from)):
        raise ConfigError("task.data_dir", "must be set: the data_prep out_dir (manifest.json, tokenizer/, shards/)"
                          if task.kind is Kind.LANGUAGE_MODEL else
                          "fine-tuning needs task.init_from=<checkpoint> (its tokenizer and model shape are used), "
                          "or task.tokenizer / task.data_dir to start from scratch")
    mc = tc.model_config()
    if tc.task.seq_len > mc.max_seq_len and mc.position == "learned":
        raise ConfigError("task.seq_len", f"{tc.task.seq_len} exceeds model.max_seq_len={mc.max_seq_len} "
                                          "(learned positions)")


# Model fields that do not change the weights' shapes: the fine-tuning config keeps its own.
RUNTIME_MODEL_KEYS = ("dropout", "attn_dropout", "attn_backend")


def apply_init_model(tc: TrainConfig, model_config: dict[str, Any]) -> None:
    """Fine-tuning from a checkpoint: its model shape replaces tc.model (all but RUNTIME_MODEL_KEYS)."""
    mine = plain(dataclasses.asdict(tc.model))
    values = {**model_config, **{k: mine[k] for k in RUNTIME_MODEL_KEYS if k in mine}}
    try:
        tc.model = OmegaConf.to_object(_preset_node(values))
    except OmegaConfBaseException as e:
        raise ConfigError("task.init_from", f"{tc.task.init_from}: its model config does not fit this "
                          f"version's schema ({config_error(e)})") from None
    mc = tc.model_config()
    if tc.task.seq_len > mc.max_seq_len and mc.position == "learned":
        raise ConfigError("task.seq_len", f"{tc.task.seq_len} exceeds the checkpoint's max_seq_len={mc.max_seq_len}")


def check_hardware(tc: TrainConfig) -> None:
    """Lightning values this machine cannot run, checked before anything is written (Lightning
    would stop with a traceback after the run directory was populated). Not part of `check`: a
    Slurm submission composes on a login node without GPUs; the job runs this on its node."""
    import torch

    tr = tc.trainer
    acc = str(tr.accelerator)
    if acc in ("gpu", "cuda"):
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise ConfigError("trainer.accelerator", f"{acc} but torch sees no CUDA GPU (torch {torch.__version__}, "
                              f"CUDA build: {torch.version.cuda or 'none'}); use trainer=cpu, or install a CUDA torch")
        if tr.devices > n:
            raise ConfigError("trainer.devices", f"{tr.devices} but this node has {n} GPU(s)")
    if acc == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("trainer.accelerator", "mps but the MPS backend is not available; use trainer=cpu")
    if acc == "cpu" and str(tr.precision) in ("16-mixed", "16-true"):
        raise ConfigError("trainer.precision", f"{tr.precision} needs a GPU; on a CPU use 32-true or bf16-mixed")
    if acc == "cpu" and tr.devices > 1 and tc.strategy.name in ("fsdp", "deepspeed"):
        raise ConfigError("strategy", f"{tc.strategy.name} needs GPUs; on CPUs use strategy=ddp (gloo)")
    if tc.strategy.name == "deepspeed":
        import importlib.util

        if importlib.util.find_spec("deepspeed") is None:
            raise ConfigError("strategy", "deepspeed is not installed (pip install 'deepspeed>=0.16')")


def build_config(cfg: Any) -> TrainConfig:
    """The checked TrainConfig of a composed config (a DictConfig from Hydra, or a plain dict of the
    same shape, which is validated against the schema here). Raises ConfigError naming the key."""
    tc = build_schema(TrainConfig, cfg, lambda key: ConfigError(key, "is required (it has no default): set it"))
    check(tc)
    return tc


register_help_resolver()


class CheckConfig(Callback):
    """Hydra calls this after composing and before it creates the run directory and .hydra/: a bad
    value ends `python -m train` with one line naming the key, and nothing is written."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check_or_exit(config, hardware=True)  # a single run runs here: check this machine too

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check_or_exit(config)
        # The jobs read this (they inherit the environment, also through sbatch): a sweep gives
        # each job its own run directory under run_dir (train/__main__.py); a one-job `-m`
        # (a Slurm submission) keeps run_dir itself, where a requeued job finds its checkpoints.
        os.environ[SWEEP_ENV] = "1" if is_sweep(config) else "0"


def _check_or_exit(config: DictConfig, hardware: bool = False) -> None:
    try:
        check_experiment(config)
        tc = build_config(config)
        if hardware:
            check_hardware(tc)
            _check_unlocked(tc.run_dir)
    except (ConfigError, LockedError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)  # SystemExit passes Hydra's error handler, which would print a traceback


def _check_unlocked(run_dir: str) -> None:
    """A run_dir another run holds is refused before Hydra rewrites its .hydra/ (the lock itself is
    taken by train.run); ranks spawned under the launcher do not check (the launcher holds it)."""
    from train.console import quiet_lightning  # both import Lightning, and train.run imports this module
    from train.run import is_launcher

    quiet_lightning()  # is_launcher's SLURM detection would warn about `srun` first
    if is_launcher():
        ensure_unlocked(run_dir)


def check_experiment(config: DictConfig) -> None:
    """`experiment=<name>` that names no file: conf/train.yaml's `optional experiment` would drop
    it without a word (and train the tiny CPU defaults); this names the ones that exist."""
    choice = OmegaConf.select(config, "hydra.runtime.choices.experiment", default=None)
    if choice in (None, "null"):
        return
    loader = GlobalHydra.instance().config_loader()
    options = sorted(loader.get_group_options("experiment"))
    if "/" in str(choice):  # a nested experiment (experiment=ablation/base): its folder's options
        folder = str(choice).rsplit("/", 1)[0]
        options += [f"{folder}/{o}" for o in sorted(loader.get_group_options(f"experiment/{folder}"))]
    if choice not in options:
        close = difflib.get_close_matches(str(choice), options, n=1)
        raise ConfigError("experiment", f"no experiment named {choice!r}" + (f" (did you mean '{close[0]}'?)" if close else "")
                          + f"; available: {', '.join(options)}")


SWEEP_ENV = "BIOGPT_TRAIN_SWEEP"
# Paths do not name a job: they stay out of its directory name.
JOB_NAME_EXCLUDES = ("run_dir", "resume", "task.init_from", "task.data_dir", "task.bench_dir", "task.tokenizer")


def is_sweep(config: DictConfig) -> bool:
    """Whether the command-line overrides sweep (`a=1,2`, `range(...)`, `glob(...)`): several jobs."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    given = list(OmegaConf.select(config, "hydra.overrides.task", default=[]) or [])
    return any(o.is_sweep_override() for o in OverridesParser.create().parse_overrides(given))


def job_run_dir(run_dir: str, num: int, overrides: list[str]) -> str:
    """`<run_dir>/<job number>-<its overrides>`, e.g. D/1-experiment=demo,optim.lr=0.003."""
    kept = sorted(o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in JOB_NAME_EXCLUDES
                  and not o.startswith("hydra"))
    name = f"{num}-" + ",".join(kept).replace("/", "_") if kept else str(num)
    return str(Path(run_dir) / name[:200])
