"""The `task` config group's schema (conf/task/*.yaml), shared by `python -m train` and `python -m eval`.

Plain dataclasses and enums: train/config.py and eval/config.py use `TaskConfig` as the type of
their `task` field, so Hydra checks every task YAML and command-line override against it while
composing (unknown keys, wrong types, enum values). `check` holds what a type cannot say.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import tasks
from common.config import ConfigError, check_range
from tasks.base import Mode, PromptFormat, Split, Task

MISSING = "???"  # OmegaConf's marker for a value that must be given
REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class TaskFiles:
    """Overrides of the task's file layout (`Task.layout`); null keeps the layout's file. A relative
    path is taken from `task.bench_dir`."""

    train: str | None = None  # fine-tuning split
    val: str | None = None  # validation split
    test: str | None = None  # test items (what eval prompts with)
    gold: str | None = None  # test answers kept apart from the items (PubMedQA, BC5CDR's PubTator file)
    entities: str | None = None  # BC5CDR: mention -> MeSH id map of the test set

    def overrides(self) -> dict[str, str]:
        return {role: path for role, path in asdict(self).items() if path}


@dataclass
class TaskConfig:
    name: str = MISSING  # a name of tasks.names()
    # data_prep out_dir (manifest.json, tokenizer/, shards/). train: the tokenizer (and, for
    # pretrain, the shards); eval task=pretrain: the shards (null = the folder the checkpoint records).
    data_dir: str | None = None
    # Benchmark folder holding pubmedqa/ and biogpt/ (../shared/data's layout);
    # null = $BIOGPT_EVAL_DATA, else ../shared/data beside the repository.
    bench_dir: str | None = None
    files: TaskFiles = field(default_factory=TaskFiles)
    # -- training (python -m train)
    seq_len: int = 128  # tokens per pretraining window / longest fine-tuning sequence
    tokenizer: str | None = None  # tokenizer.json; null = the one <data_dir>/manifest.json names
    init_from: str | None = None  # checkpoint whose weights start the run (ours, or a converted BioGPT)
    vocab_size_from_tokenizer: bool = False  # model.vocab_size := the tokenizer's size (demo data)
    # -- evaluation (python -m eval)
    mode: Mode = Mode.generate  # one of the task's modes (Task.modes)
    prompt_format: PromptFormat = PromptFormat.train
    max_new_tokens: int = 64  # generation budget per item (generation.max_new_tokens overrides it)
    split: Split = Split.val  # pretrain: the shards scored
    block_size: int | None = None  # pretrain: tokens per window; null = the model's max_seq_len
    batch_size: int = 8  # pretrain: windows per forward pass
    max_windows: int | None = None  # pretrain: cap on windows scored (null = the whole split)
    # perplexity on texts instead of shards: JSON lines {"id", "text", "spans"?} (docs/eval.md)
    texts: str | None = None
    word_counts: str | None = None  # texts: JSON {word: count} of the training split, for rare-word bits/byte
    rare_max_count: int = 5  # texts: a word is rare if seen at most this often in word_counts
    prompt: str | None = None  # generate: one prompt ...
    prompts_file: str | None = None  # ... or a text file with one prompt per line


def resolve_bench_dir(cfg: TaskConfig) -> Path:
    """The benchmark folder: task.bench_dir, else $BIOGPT_EVAL_DATA, else ../shared/data beside the repo."""
    chosen = cfg.bench_dir or os.environ.get("BIOGPT_EVAL_DATA")
    return Path(chosen).expanduser() if chosen else REPO_ROOT.parent / "shared" / "data"


def check(cfg: TaskConfig) -> Task:
    """Range and cross-field checks of the task section (types were checked while composing);
    returns the task. Raises ConfigError naming the key."""
    if cfg.name == MISSING:
        raise ConfigError("task", f"missing; pass task=<{'|'.join(tasks.names())}>")
    try:
        task = tasks.get(cfg.name)
    except KeyError as e:
        raise ConfigError("task.name", e.args[0]) from None
    if cfg.mode not in task.modes:
        raise ConfigError("task.mode", f"{str(cfg.mode)!r} is not a mode of {task.name}; "
                                       f"choose one of {', '.join(map(str, task.modes))}")
    for role in cfg.files.overrides():
        if role not in task.layout:
            has = ", ".join(task.layout) or "none"
            raise ConfigError(f"task.files.{role}", f"task {task.name} has no {role} file (its files: {has})")
    check_range("task.seq_len", cfg.seq_len, 2)
    check_range("task.max_new_tokens", cfg.max_new_tokens, 1)
    check_range("task.block_size", cfg.block_size, 1, allow_none=True)
    check_range("task.batch_size", cfg.batch_size, 1)
    check_range("task.max_windows", cfg.max_windows, 1, allow_none=True)
    check_range("task.rare_max_count", cfg.rare_max_count, 0)
    for key in ("texts", "word_counts"):
        value = getattr(cfg, key)
        if value and not Path(value).expanduser().is_file():
            raise ConfigError(f"task.{key}", f"{value} does not exist")
    if cfg.word_counts and not cfg.texts:
        raise ConfigError("task.word_counts", "only used with task.texts=<file.jsonl[.gz]>")
    return task
