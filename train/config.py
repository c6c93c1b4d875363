"""Typed training configuration, built from the composed Hydra config before any work starts.

Every section is a dataclass; `TrainConfig.from_omegaconf(cfg)` rejects unknown keys and wrong
types naming the dotted key (`trainer.max_stepz`), so a typo in an experiment file fails in
seconds instead of after a job waited in a queue. The model section goes through
`model.ModelConfig.from_mapping`, which does the same for the model.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from typing import Any

TASKS = ("pretrain", "pubmedqa", "bc5cdr", "ddi", "kd_dti")
STRATEGIES = ("auto", "ddp", "fsdp", "deepspeed")
SCHEDULES = ("cosine", "linear", "constant")
LOGGERS = ("wandb", "csv")


class ConfigError(ValueError):
    """A configuration value is wrong; raised before any work starts, naming the key."""

    def __init__(self, key: str, reason: str):
        self.key = key
        super().__init__(f"config key '{key}': {reason}")


@dataclass
class TaskConfig:
    name: str = "pretrain"  # pretrain | pubmedqa | bc5cdr | ddi | kd_dti
    data_dir: str = "runs/demo/data"  # data_prep out_dir: shards (pretrain) and tokenizer/
    tokenizer: str | None = None  # tokenizer.json; null = the one named by <data_dir>/manifest.json
    seq_len: int = 128  # tokens per training window / max fine-tuning sequence length
    # fine-tuning only: JSON files in the task's raw layout (BioGPT's data/<task>/raw, PubMedQA's)
    train_file: str | None = None
    val_file: str | None = None
    test_file: str | None = None
    init_from: str | None = None  # checkpoint to start from (ours, or a converted BioGPT)
    vocab_size_from_tokenizer: bool = False  # set model.vocab_size to the tokenizer's size (demo data)

    @property
    def is_pretrain(self) -> bool:
        return self.name == "pretrain"


@dataclass
class DataConfig:
    batch_size: int = 8  # micro-batch per device
    num_workers: int = 0
    val_batches: int = 8  # validation batches per evaluation (per device)
    pin_memory: bool = False


@dataclass
class OptimConfig:
    lr: float = 3e-4
    min_lr_ratio: float = 0.1  # the schedule ends at lr * min_lr_ratio
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    warmup_steps: int = 100
    schedule: str = "cosine"  # cosine | linear | constant
    decay_steps: int | None = None  # length of warmup+decay; null = trainer.max_steps
    fused: bool = False  # torch's fused AdamW (GPU only)


@dataclass
class TrainerConfig:
    accelerator: str = "cpu"
    devices: int = 1
    num_nodes: int = 1
    precision: str = "32-true"  # bf16-mixed on GPUs
    max_steps: int = 100
    accumulate_grad_batches: int = 1
    gradient_clip_val: float | None = 1.0
    val_check_interval: int = 50  # optimizer steps between validations
    checkpoint_every_n_steps: int = 50  # `last.ckpt` refresh interval (also at the end and on signals)
    save_top_k: int = 2  # best checkpoints by val/loss
    max_nan_skips: int = 10  # non-finite losses tolerated before the run stops
    requeue_on_signal: bool = False  # true: `scontrol requeue` after a SIGTERM/SIGUSR1 save
    compile: bool = False
    activation_checkpointing: bool = False
    progress_bar: bool = True
    log_every_n_steps: int = 1


@dataclass
class StrategyConfig:
    name: str = "auto"  # auto | ddp | fsdp | deepspeed
    process_group_backend: str | None = None  # null = nccl on GPU, gloo on CPU
    find_unused_parameters: bool = False
    # fsdp
    sharding_strategy: str = "FULL_SHARD"
    # deepspeed
    stage: int = 2
    offload_optimizer: bool = False
    offload_parameters: bool = False


@dataclass
class LoggerConfig:
    name: str = "wandb"  # wandb | csv (metrics.csv in run_dir is written either way)
    project: str = "biogpt-healthcare"
    entity: str | None = None
    mode: str = "auto"  # auto (online when logged in, else offline) | online | offline | disabled
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
    run_dir: str
    resume: str = "auto"  # auto | none | <checkpoint path>
    seed: int = 1234
    task: TaskConfig = field(default_factory=TaskConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    debug: DebugConfig = field(default_factory=DebugConfig)
    model: dict[str, Any] = field(default_factory=dict)  # validated by ModelConfig.from_mapping

    @classmethod
    def from_omegaconf(cls, cfg: Any) -> TrainConfig:
        from omegaconf import OmegaConf

        raw = OmegaConf.to_container(cfg, resolve=True) if not isinstance(cfg, dict) else cfg
        raw = {k: v for k, v in raw.items() if k != "hydra"}
        tc = _build(cls, raw, "")
        tc.check()
        return tc

    def model_config(self):
        from model import ModelConfig

        try:
            return ModelConfig.from_mapping(self.model)
        except ValueError as e:
            raise ConfigError("model", str(e)) from None

    def check(self) -> None:
        """Cross-field checks (types were checked while building)."""
        if self.task.name not in TASKS:
            raise ConfigError("task.name", f"{self.task.name!r} is not one of {TASKS}")
        if not self.task.is_pretrain and not self.task.train_file:
            raise ConfigError("task.train_file", f"task {self.task.name} needs a JSON file to fine-tune on")
        if self.strategy.name not in STRATEGIES:
            raise ConfigError("strategy.name", f"{self.strategy.name!r} is not one of {STRATEGIES}")
        if self.optim.schedule not in SCHEDULES:
            raise ConfigError("optim.schedule", f"{self.optim.schedule!r} is not one of {SCHEDULES}")
        if self.logger.name not in LOGGERS:
            raise ConfigError("logger.name", f"{self.logger.name!r} is not one of {LOGGERS}")
        if self.logger.mode not in ("auto", "online", "offline", "disabled"):
            raise ConfigError("logger.mode", f"{self.logger.mode!r}: use auto, online, offline or disabled")
        if not self.run_dir:
            raise ConfigError("run_dir", "must be set (a stable directory: resume looks for checkpoints there)")
        for key in ("max_steps", "accumulate_grad_batches", "val_check_interval", "checkpoint_every_n_steps"):
            if getattr(self.trainer, key) < 1:
                raise ConfigError(f"trainer.{key}", "must be >= 1")
        for key in ("batch_size", "val_batches"):
            if getattr(self.data, key) < 1:
                raise ConfigError(f"data.{key}", "must be >= 1")
        if self.task.seq_len < 2:
            raise ConfigError("task.seq_len", "must be >= 2")
        if self.optim.lr <= 0:
            raise ConfigError("optim.lr", "must be > 0")
        if self.debug.step_delay_s < 0:
            raise ConfigError("debug.step_delay_s", "must be >= 0")
        mc = self.model_config()
        if self.task.seq_len > mc.max_seq_len and mc.position == "learned":
            raise ConfigError("task.seq_len", f"{self.task.seq_len} exceeds model.max_seq_len={mc.max_seq_len} "
                              "(learned positions)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _build(cls: type, raw: Any, path: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(path or "<root>", f"expected a mapping, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in raw.items():
        dotted = f"{path}.{key}" if path else key
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(dotted, f"unknown key{hint}; valid keys: {', '.join(sorted(fields))}")
        kwargs[key] = _coerce(value, hints[key], dotted)
    missing = [n for n, f in fields.items() if n not in kwargs and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{path + '.' if path else ''}{missing[0]}", "is required")
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(key, "must not be null")
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if value is None and hint is not Any:
        raise ConfigError(key, "must not be null")
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key)
    if hint is Any:
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(key, "must be a mapping")
        return dict(value)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(key, f"must be a list, got {value!r}")
        inner = args[0] if args else Any
        items = [_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
        if origin is tuple:
            if len(args) == 2 and args[1] is not Ellipsis and len(items) != 2:
                raise ConfigError(key, f"must have 2 entries, got {len(items)}")
            return tuple(items)
        return items
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(key, f"must be an integer, got {value!r}")
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(key, f"must be true or false, got {value!r}")
    if hint in (float, str) and not isinstance(value, hint):
        raise ConfigError(key, f"must be a {hint.__name__}, got {value!r}")
    return value
