"""Fine-tuning data: a task's (source, target) examples, tokenized once with `datasets.map`.

What an example is (the raw file layout, BioGPT's wording of source and target) belongs to the
task (`tasks.get(name).examples(path)`, tasks/<name>.py); here they become `input_ids` + `labels`
where only target tokens (and the final EOS) carry a label: source tokens get -100 so the loss
ignores them. The datamodule only pads.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import datasets
import numpy as np
import torch
from tokenizers import Tokenizer

import tasks
from common.config import ConfigError
from tasks.base import Kind

from .data import ResumableDataModule

IGNORE_INDEX = -100


def check_finetune_files(tc) -> None:
    """A benchmark run's (tc: TrainConfig) train and val files exist: no task falls back to
    training on its validation split. Raises ConfigError naming task.files.<role>."""
    from tasks.config import resolve_bench_dir

    task = tasks.get(tc.task.name)
    if task.kind is not Kind.BENCHMARK:
        return
    files = task.paths(resolve_bench_dir(tc.task), tc.task.files.overrides())
    for role in ("train", "val"):
        if not Path(files[role]).is_file():
            raise ConfigError(f"task.files.{role}", f"{files[role]} does not exist ({task.name} {role} split); fetch "
                              "the evaluation data (`python -m eval.data fetch out_dir=<dir>`, then task.bench_dir=<dir> "
                              f"or BIOGPT_EVAL_DATA=<dir>) or set task.files.{role}=<your copy>")


def load_examples(task: str, path: str | Path) -> datasets.Dataset:
    """(id, source, target, label) records of one file of the task, as a `datasets.Dataset`.
    A missing or malformed file raises tasks.base.DataFileError naming it."""
    spec = tasks.get(task)
    if spec.kind is not Kind.BENCHMARK:
        raise ValueError(f"task {task!r} has no fine-tuning examples")
    return datasets.Dataset.from_list([asdict(e) for e in spec.examples(Path(path))])


def tokenize_dataset(ds, tokenizer, max_len: int, eos_id: int, num_proc: int | None = None):
    """Add `input_ids`/`labels` (length <= max_len): source tokens masked, target + EOS supervised.

    When source + target do not fit, the source is cut from its end (the target is what is learnt).
    """

    def encode(batch):
        src = tokenizer.encode_batch(batch["source"], add_special_tokens=False)
        # A leading space: the target's first word is word-initial, as in running text.
        tgt = tokenizer.encode_batch([" " + t for t in batch["target"]], add_special_tokens=False)
        ids_out, labels_out = [], []
        for s, t in zip(src, tgt, strict=True):
            t_ids = t.ids[: max_len]  # seq = source + target + EOS, then shifted by one
            s_ids = s.ids[: max_len - len(t_ids)]
            seq = s_ids + t_ids + [eos_id]
            labels = [IGNORE_INDEX] * len(s_ids) + t_ids + [eos_id]
            ids_out.append(seq[:-1][:max_len])
            labels_out.append(labels[1:][:max_len])
        return {"input_ids": ids_out, "labels": labels_out}

    return ds.map(encode, batched=True, num_proc=num_proc, desc="tokenizing")


class PaddedCollate:
    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        T = max(len(it["input_ids"]) for it in items)
        ids = np.full((len(items), T), self.pad_id, dtype=np.int64)
        labels = np.full((len(items), T), IGNORE_INDEX, dtype=np.int64)
        for i, it in enumerate(items):
            n = len(it["input_ids"])
            ids[i, :n] = it["input_ids"]  # right padding: causal attention never sees it
            labels[i, :n] = it["labels"]
        return {"input_ids": torch.from_numpy(ids), "labels": torch.from_numpy(labels)}


class _Rows(torch.utils.data.Dataset):
    def __init__(self, ds):
        self.ds = ds.with_format(None, columns=["input_ids", "labels"])

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> dict:
        return self.ds[int(i)]


class FinetuneDataModule(ResumableDataModule):
    def __init__(self, task: str, train_file: str | Path, val_file: str | Path | None, tokenizer_path: str | Path,
                 seq_len: int, batch_size: int, seed: int, eos_id: int = 2, pad_id: int = 1,
                 num_workers: int = 0, val_batches: int = 8, pin_memory: bool = False):
        super().__init__(batch_size, seed, num_workers, val_batches, pin_memory)
        self.task, self.train_file, self.val_file = task, train_file, val_file
        self.tokenizer_path = Path(tokenizer_path)
        self.seq_len, self.eos_id, self.pad_id = seq_len, eos_id, pad_id
        self.collate = PaddedCollate(pad_id)

    def setup(self, stage: str | None = None) -> None:
        tok = Tokenizer.from_file(str(self.tokenizer_path))
        self.train_ds = _Rows(tokenize_dataset(load_examples(self.task, self.train_file), tok, self.seq_len,
                                               self.eos_id))
        val_file = self.val_file or self.train_file
        self.val_ds = _Rows(tokenize_dataset(load_examples(self.task, val_file), tok, self.seq_len, self.eos_id))
