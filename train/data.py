"""Pretraining data: packed fixed-length windows over data_prep's token shards.

The shards are already tokenized with EOS after every document, so a window is just
`seq_len + 1` consecutive tokens (inputs = [:-1], labels = [1:]); windows do not overlap and may
span documents (standard packing; the EOS token marks the boundary). The datamodule never
tokenizes text.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from data_prep.tokens.shards import TokenShards

from .sampler import ResumableBatchSampler


class PackedWindows(Dataset):
    """Window i = tokens [i * seq_len, i * seq_len + seq_len + 1) of a split."""

    def __init__(self, shards, seq_len: int):
        self.shards = shards
        self.seq_len = seq_len
        self.n = (shards.num_tokens - 1) // seq_len

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> np.ndarray:
        return self.shards.window(i * self.seq_len, self.seq_len + 1)


def collate_windows(items: list[np.ndarray]) -> dict[str, torch.Tensor]:
    x = torch.from_numpy(np.stack(items))  # (B, T + 1)
    return {"input_ids": x[:, :-1].contiguous(), "labels": x[:, 1:].contiguous()}


def _loader(ds: Dataset, sampler, collate, num_workers: int, pin_memory: bool, seed: int) -> DataLoader:
    # A private generator: creating the iterator must not draw from the global torch RNG, or the
    # random stream seen by dropout would depend on when iterators are created (differs on resume).
    g = torch.Generator()
    g.manual_seed(seed)
    return DataLoader(ds, batch_sampler=sampler, collate_fn=collate, num_workers=num_workers,
                      pin_memory=pin_memory, generator=g, persistent_workers=num_workers > 0)


class ResumableDataModule(L.LightningDataModule):
    """Common part: the train sampler's position goes into (and comes back from) the checkpoint."""

    def __init__(self, batch_size: int, seed: int, num_workers: int = 0, val_batches: int = 8,
                 pin_memory: bool = False):
        super().__init__()
        self.batch_size = batch_size
        self.seed = seed
        self.num_workers = num_workers
        self.val_batches = val_batches
        self.pin_memory = pin_memory
        self.train_sampler: ResumableBatchSampler | None = None
        self._pending_state: dict | None = None

    # subclasses set these in setup()
    train_ds: Dataset
    val_ds: Dataset | None = None
    collate = staticmethod(collate_windows)

    def _rank_world(self) -> tuple[int, int]:
        t = self.trainer
        return (t.global_rank, t.world_size) if t is not None else (0, 1)

    def train_dataloader(self) -> DataLoader:
        rank, world = self._rank_world()
        self.train_sampler = ResumableBatchSampler(len(self.train_ds), self.batch_size, self.seed, rank, world)
        if self._pending_state is not None:
            self.train_sampler.load_state_dict(self._pending_state)
            self._pending_state = None
        return _loader(self.train_ds, self.train_sampler, self.collate, self.num_workers, self.pin_memory,
                       self.seed)

    def val_dataloader(self) -> DataLoader:
        rank, world = self._rank_world()
        n = min(len(self.val_ds), self.val_batches * self.batch_size * world)
        # Fixed, unshuffled slice so every evaluation measures the same tokens.
        sampler = ResumableBatchSampler(n, self.batch_size, self.seed, rank, world, shuffle=False)
        return _loader(self.val_ds, sampler, self.collate, 0, self.pin_memory, self.seed)

    def advance(self, n: int) -> None:
        if self.train_sampler is not None:
            self.train_sampler.advance(n)

    def state_dict(self) -> dict:
        if self.train_sampler is not None:
            return {"sampler": self.train_sampler.state_dict()}
        return {"sampler": self._pending_state} if self._pending_state else {}

    def load_state_dict(self, state: dict) -> None:
        # Lightning restores the datamodule before it asks for the train dataloader.
        if state.get("sampler"):
            if self.train_sampler is not None:
                self.train_sampler.load_state_dict(state["sampler"])
            else:
                self._pending_state = dict(state["sampler"])


class PretrainDataModule(ResumableDataModule):
    def __init__(self, data_dir: str | Path, seq_len: int, batch_size: int, seed: int, num_workers: int = 0,
                 val_batches: int = 8, pin_memory: bool = False):
        super().__init__(batch_size, seed, num_workers, val_batches, pin_memory)
        self.data_dir = Path(data_dir)
        self.seq_len = seq_len

    def setup(self, stage: str | None = None) -> None:
        self.train_ds = PackedWindows(TokenShards.from_manifest(self.data_dir, split="train"), self.seq_len)
        self.val_ds = PackedWindows(TokenShards.from_manifest(self.data_dir, split="val"), self.seq_len)
        if len(self.val_ds) == 0:
            raise ValueError(f"{self.data_dir}: the val split has fewer than {self.seq_len + 1} tokens; "
                             "lower task.seq_len or prepare more data")
