"""Pretraining data: packed fixed-length windows over data_prep's token shards.

The shards are already tokenized with EOS after every document, so a window is just
`seq_len + 1` consecutive tokens (inputs = [:-1], labels = [1:]); windows do not overlap and may
span documents (standard packing; the EOS token marks the boundary). The datamodule never
tokenizes text.

A corpus with several generations (train/generations.py): windows are cut from the live
documents (TokenShards leaves retired ones out) of the run's new generations, plus, with replay,
from those of the older ones (a second part of the dataset that MixtureBatchSampler mixes in);
validation reports the whole val split as `val/loss` and each generation's as `val/loss_gen<g>`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from data_prep.tokens.shards import TokenShards, manifest_generations

from .generations import GenerationPlan, GenerationTokens, add_tokens
from .sampler import MixtureBatchSampler, ResumableBatchSampler, ResumeError


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


class ConcatWindows(Dataset):
    """Several PackedWindows end to end: index i < len(parts[0]) is parts[0][i], and so on."""

    def __init__(self, parts: list[PackedWindows]):
        self.parts = parts
        self.starts = np.cumsum([0] + [len(p) for p in parts]).tolist()

    def __len__(self) -> int:
        return self.starts[-1]

    def __getitem__(self, i: int) -> np.ndarray:
        k = int(np.searchsorted(self.starts, i, side="right")) - 1
        return self.parts[k][i - self.starts[k]]


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

    def _train_sampler(self, rank: int, world: int) -> ResumableBatchSampler:
        return ResumableBatchSampler(len(self.train_ds), self.batch_size, self.seed, rank, world)

    def train_dataloader(self) -> DataLoader:
        rank, world = self._rank_world()
        self.train_sampler = self._train_sampler(rank, world)
        if self._pending_state is not None:
            self.train_sampler.load_state_dict(self._pending_state)
            self._pending_state = None
        return _loader(self.train_ds, self.train_sampler, self.collate, self.num_workers, self.pin_memory,
                       self.seed)

    def _val_loader(self, ds: Dataset) -> DataLoader:
        rank, world = self._rank_world()
        n = min(len(ds), self.val_batches * self.batch_size * world)
        # Fixed, unshuffled slice so every evaluation measures the same tokens.
        sampler = ResumableBatchSampler(n, self.batch_size, self.seed, rank, world, shuffle=False)
        return _loader(ds, sampler, self.collate, 0, self.pin_memory, self.seed)

    def val_dataloader(self) -> DataLoader:
        return self._val_loader(self.val_ds)

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
                 val_batches: int = 8, pin_memory: bool = False, plan: GenerationPlan | None = None):
        super().__init__(batch_size, seed, num_workers, val_batches, pin_memory)
        self.data_dir = Path(data_dir)
        self.seq_len = seq_len
        self.plan = plan  # None: every generation, no replay
        self.tokens_by_generation: dict[str, int] = {}  # trained on by this run, all ranks together
        self.val_names = ["val/loss"]  # one per val dataloader, in order
        self._counter: GenerationTokens | None = None
        self._replay = 0

    def setup(self, stage: str | None = None) -> None:
        plan = self.plan
        main = TokenShards.from_manifest(self.data_dir, "train", generations=plan.new if plan else None)
        parts = [PackedWindows(main, self.seq_len)]
        views = [main]
        world = self._rank_world()[1]
        if plan is not None and plan.new != plan.corpus and len(parts[0]) < self.batch_size * world:
            raise ValueError(f"{self.data_dir}: generation(s) {plan.new} hold {len(parts[0])} training windows of "
                             f"{self.seq_len + 1} tokens, fewer than one batch of {self.batch_size} per rank; "
                             "append more data before continuing, or lower task.seq_len / data.batch_size")
        if plan is not None and plan.old:
            old = TokenShards.from_manifest(self.data_dir, "train", generations=plan.old)
            parts.append(PackedWindows(old, self.seq_len))
            views.append(old)
            if len(parts[1]) == 0:
                raise ValueError(f"{self.data_dir}: data.replay={plan.replay} but the older generation(s) "
                                 f"{plan.old} hold fewer than {self.seq_len + 1} live training tokens; set data.replay=0")
        self.train_ds = parts[0] if len(parts) == 1 else ConcatWindows(parts)
        self._replay = len(parts[1]) if len(parts) > 1 else 0
        self._counter = GenerationTokens(views, self.seq_len, [len(p) for p in parts])
        val = TokenShards.from_manifest(self.data_dir, "val")
        self.val_ds = PackedWindows(val, self.seq_len)
        if len(self.val_ds) == 0:
            raise ValueError(f"{self.data_dir}: the val split has fewer than {self.seq_len + 1} tokens; "
                             "lower task.seq_len or prepare more data")
        self.val_generation_ds: dict[int, PackedWindows] = {}
        generations = manifest_generations(val.manifest)
        if len(generations) > 1:
            small = []
            for g in generations:
                ds = PackedWindows(TokenShards.from_manifest(self.data_dir, "val", generations=[g]), self.seq_len)
                if len(ds) >= self.batch_size * world:
                    self.val_generation_ds[g] = ds
                else:
                    small.append(g)
            if small:
                warnings.warn(f"{self.data_dir}: the val split of generation(s) {small} is shorter than one batch "
                              f"of {self.seq_len + 1}-token windows per rank; no val/loss_gen<g> for them", stacklevel=2)
        self.val_names = ["val/loss", *(f"val/loss_gen{g}" for g in self.val_generation_ds)]

    def _train_sampler(self, rank: int, world: int) -> ResumableBatchSampler:
        if self._replay:
            main = len(self.train_ds) - self._replay
            return MixtureBatchSampler(main, self._replay, self.plan.replay, self.batch_size, self.seed, rank, world)
        return super()._train_sampler(rank, world)

    def val_dataloader(self):
        loaders = [self._val_loader(self.val_ds), *(self._val_loader(ds) for ds in self.val_generation_ds.values())]
        return loaders[0] if len(loaders) == 1 else loaders

    def advance(self, n: int) -> None:
        if self.train_sampler is not None and self._counter is not None:
            # every rank counts the whole step (the order is known everywhere): no communication
            self.tokens_by_generation = add_tokens(self.tokens_by_generation,
                                                   self._counter.count(self.train_sampler.next_global_batch()))
        super().advance(n)

    def state_dict(self) -> dict:
        state = super().state_dict()
        if self.plan is not None:
            state["generations"] = self.plan.to_dict()
        state["tokens_by_generation"] = dict(self.tokens_by_generation)
        return state

    def load_state_dict(self, state: dict) -> None:
        saved = state.get("generations") or {"corpus": [1], "new": [1], "old": [], "replay": 0.0}
        if self.plan is not None:
            self._check_same_data(saved, self.plan)
        self.tokens_by_generation = {str(g): int(n) for g, n in state.get("tokens_by_generation", {}).items()}
        super().load_state_dict(state)

    def _check_same_data(self, saved: dict, plan: GenerationPlan) -> None:
        """A resumed run continues exactly only on the data it started with."""
        added = sorted(set(plan.corpus) - set(saved["corpus"]))
        if added:
            raise ResumeError(
                f"{self.data_dir} now holds generation(s) {', '.join(map(str, added))} that this run did not start "
                "with (appended since): an exact resume needs the data it started on. Continue on the new "
                "generation(s) as a new run: run_dir=<a new folder> task.init_from=<this run's "
                "checkpoints/last.ckpt> (it replays data.replay of every batch from the older ones)")
        now = plan.to_dict()
        if any(saved.get(k) != now[k] for k in ("corpus", "new", "old")) or float(saved.get("replay", 0)) != plan.replay:
            raise ResumeError(
                f"the checkpoint trained on generation(s) {saved['new']} replaying {saved.get('old') or 'none'} at "
                f"{saved.get('replay', 0)} of {saved['corpus']}; this run would train on {plan.new} replaying "
                f"{plan.old or 'none'} at {plan.replay}: data.generations, data.replay or task.init_from changed; "
                "resume with the original ones or start a new run_dir")
