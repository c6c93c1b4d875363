"""The evaluation app's configuration: typed dataclasses registered in Hydra's ConfigStore as the
schema of conf/eval.yaml (the `task` group's schema is tasks/config.py's, shared with train), and
`check`, the one function for what a type cannot say.

Every default is written here once; a misspelled key, a wrong type or a value outside an enum
fails while Hydra composes, naming the key, and `CheckConfig` runs `build_config` before Hydra
creates out_dir, so a bad value fails before anything is written. Imports neither torch nor
Lightning: scoring a prediction file never loads them.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

import tasks
from common.config import ConfigError, check_range
from common.hydra import build_schema, register_help_resolver
from tasks.base import Choice, Kind, Task
from tasks.config import TaskConfig, resolve_bench_dir
from tasks.config import check as check_task

REPO_ROOT = Path(__file__).resolve().parents[1]


class DType(Choice):
    auto = "auto"  # bf16 on CUDA, fp32 on CPU
    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"


@dataclass
class GenerationConfig:
    max_new_tokens: int | None = None  # null: the task's task.max_new_tokens
    greedy: bool = True  # argmax decoding, as BioGPT's infer.sh (beam 1)
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    batch_size: int = 8  # prompts generated together (left-padded)


@dataclass
class EvalConfig:
    task: TaskConfig = field(default_factory=TaskConfig)
    out_dir: str = "???"  # results.json, results.md (+ predictions.jsonl, figures) go here
    checkpoint: str | None = None  # a checkpoint written by train/ (or a converted BioGPT one)
    predictions: str | None = None  # or: a JSONL file of {"id": ..., "prediction": "<generated text>"}
    limit: int | None = None  # score N test items, stratified by label with `seed` (smoke runs; not comparable)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: DType = DType.auto
    seed: int = 0
    allow_contaminated: bool = False  # evaluate even if the checkpoint's training data holds test-set PMIDs
    strict_ids: bool = False  # a prediction file missing test ids is an error (default: a warning with the count)
    train_manifest: str | None = None  # the training data's manifest.json (overrides the one the checkpoint records)
    generation: GenerationConfig = field(default_factory=GenerationConfig)


@dataclass(frozen=True)
class Settings:
    """A checked EvalConfig with what it implies resolved: the task, paths, the generation budget."""

    cfg: EvalConfig
    task: Task
    out_dir: Path
    bench_dir: Path  # absolute
    checkpoint: Path | None
    predictions: Path | None
    generation: GenerationConfig  # max_new_tokens filled in from the task when null

    @property
    def name(self) -> str:
        return self.task.name

    def files(self) -> dict[str, Path]:
        """The task's files: its layout under bench_dir with the task.files overrides."""
        return self.task.paths(self.bench_dir, self.cfg.task.files.overrides())


cs = ConfigStore.instance()
cs.store(name="eval_schema", node=EvalConfig)

MISSING_HINTS = {
    "task.name": ("task", lambda: f"missing; pass task=<{'|'.join(tasks.names())}>"),
    "out_dir": ("out_dir", lambda: "missing; pass out_dir=<folder for results.json and results.md>"),
}


def check(ec: EvalConfig) -> Settings:
    """Everything a type cannot say, in one place: ranges and which keys go together."""
    task = check_task(ec.task)
    checkpoint, predictions = _path(ec.checkpoint), _path(ec.predictions)
    if checkpoint and predictions:
        raise ConfigError("predictions", "give either checkpoint=<ckpt> or predictions=<jsonl>, not both")
    if task.kind is not Kind.BENCHMARK:
        if predictions:
            raise ConfigError("predictions", f"task {task.name} needs a model: pass checkpoint=<ckpt>")
        if not checkpoint:
            raise ConfigError("checkpoint", f"task {task.name} needs checkpoint=<ckpt>")
    elif not (checkpoint or predictions):
        raise ConfigError("checkpoint", "pass checkpoint=<ckpt> to run a model, or predictions=<jsonl> to score a file")
    if checkpoint and not checkpoint.exists():
        raise ConfigError("checkpoint", f"{checkpoint} does not exist; pass the path of a checkpoint written by train/")
    if task.kind is Kind.GENERATION and not (ec.task.prompt or ec.task.prompts_file):
        raise ConfigError("task.prompt", "task generate needs task.prompt='<text>' or task.prompts_file=<txt>")
    if ec.task.prompts_file and not Path(ec.task.prompts_file).is_file():
        raise ConfigError("task.prompts_file", f"{ec.task.prompts_file} does not exist")
    if not (ec.device in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", ec.device)):
        raise ConfigError("device", f"{ec.device!r}; use auto, cpu, cuda or cuda:N")
    check_range("limit", ec.limit, 1, allow_none=True)
    check_range("seed", ec.seed, 0, 2**63 - 1)
    g = ec.generation
    check_range("generation.max_new_tokens", g.max_new_tokens, 1, allow_none=True)
    check_range("generation.temperature", g.temperature, 0, lo_open=True)
    check_range("generation.top_k", g.top_k, 1, allow_none=True)
    check_range("generation.top_p", g.top_p, 0, 1, lo_open=True, allow_none=True)
    check_range("generation.batch_size", g.batch_size, 1)
    gen = dataclasses.replace(g, max_new_tokens=g.max_new_tokens or ec.task.max_new_tokens)
    return Settings(ec, task, Path(ec.out_dir), resolve_bench_dir(ec.task).resolve(), checkpoint, predictions, gen)


def _path(value: str | None) -> Path | None:
    return Path(value).expanduser() if value else None


def build_config(cfg: Any) -> Settings:
    """The checked settings of a composed config (a DictConfig from Hydra, or a plain dict of the same
    shape, validated against the schema here). Raises ConfigError naming the key."""
    return check(build_schema(EvalConfig, cfg, _missing))


def _missing(key: str) -> ConfigError:
    key, reason = MISSING_HINTS.get(key, (key, lambda: "missing: set it"))
    return ConfigError(key, reason())


def compose(overrides: list[str]) -> DictConfig:
    """The config `python -m eval <overrides>` would run with (for tests and notebooks)."""
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        return hydra_compose(config_name="eval", overrides=overrides)


register_help_resolver()


class CheckConfig(Callback):
    """Hydra calls this after composing and before it creates out_dir and .hydra/: a bad value ends
    `python -m eval` with one line naming the key (exit 2), and nothing is written."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check_or_exit(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check_or_exit(config)


def _check_or_exit(config: DictConfig) -> None:
    try:
        build_config(config)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)  # SystemExit passes Hydra's error handler, which would print a traceback
