"""A resumable, rank-sharded batch sampler whose position is part of the training checkpoint.

The order of an epoch is a permutation drawn from (seed, epoch) alone; rank r takes every
world_size-th index of it (the tail that does not divide evenly is dropped so all ranks run the
same number of steps). The sampler runs in the main process, so the order does not depend on
`num_workers`, and `consumed` counts samples handed to the training step (not the ones the
DataLoader prefetched), so a checkpoint says exactly where the next batch starts.

We keep this state ourselves instead of relying on Lightning/litdata dataloader-state restoration,
whose open bugs repeat or skip data after a resume.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np


class ResumeError(RuntimeError):
    """A checkpoint's data position cannot be used with the current data or world size."""


@dataclass
class SamplerState:
    epoch: int = 0
    consumed: int = 0  # samples of `epoch` already trained on, on this rank
    seed: int = 0
    world_size: int = 1
    num_samples: int = 0  # dataset size the permutation was drawn over

    def to_dict(self) -> dict:
        return asdict(self)


class ResumableBatchSampler:
    def __init__(self, num_samples: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 shuffle: bool = True):
        if num_samples < batch_size * world_size:
            raise ValueError(f"{num_samples} samples cannot fill one batch of {batch_size} on each of "
                             f"{world_size} ranks; use more data, a smaller data.batch_size or task.seq_len")
        self.batch_size = batch_size
        self.rank = rank
        self.shuffle = shuffle
        self.state = SamplerState(seed=seed, world_size=world_size, num_samples=num_samples)

    # -- order ------------------------------------------------------------------------------
    def epoch_indices(self, epoch: int) -> np.ndarray:
        """This rank's indices for `epoch`, in order (a whole number of batches)."""
        s = self.state
        if self.shuffle:
            order = np.random.default_rng([s.seed, epoch]).permutation(s.num_samples)
        else:
            order = np.arange(s.num_samples)
        per_rank = (s.num_samples // s.world_size) // self.batch_size * self.batch_size
        return order[self.rank::s.world_size][:per_rank]

    def __len__(self) -> int:
        """Batches in a full epoch (Lightning compares its restored batch counter against this)."""
        return (self.state.num_samples // self.state.world_size) // self.batch_size

    def __iter__(self) -> Iterator[list[int]]:
        idx = self.epoch_indices(self.state.epoch)
        # Start at the first sample not yet trained on; `consumed` is a multiple of batch_size.
        for start in range(self.state.consumed, len(idx) - self.batch_size + 1, self.batch_size):
            yield idx[start:start + self.batch_size].tolist()

    # -- position -----------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Jump to `epoch` (a no-op for the current one). Lightning does not call this on batch
        samplers; epochs advance in `advance`."""
        if epoch != self.state.epoch:
            self.state.epoch = epoch
            self.state.consumed = 0

    def advance(self, n: int) -> None:
        """Record that `n` more samples reached the training step."""
        self.state.consumed += n
        if self.state.consumed >= len(self) * self.batch_size:
            # The epoch is done: the next iteration starts the next epoch. Lightning never calls
            # set_epoch on a batch sampler, so the sampler moves itself on, and a checkpoint taken
            # on an epoch's last batch resumes at the next epoch's first batch.
            self.state.epoch += 1
            self.state.consumed = 0

    def state_dict(self) -> dict:
        return self.state.to_dict()

    def load_state_dict(self, d: dict) -> None:
        saved = SamplerState(**d)
        cur = self.state
        if saved.world_size != cur.world_size:
            raise ResumeError(
                f"the checkpoint was written by {saved.world_size} data-parallel ranks, this run has "
                f"{cur.world_size}: exact resume needs the same world size (trainer.devices x "
                f"trainer.num_nodes); start a new run_dir with init_from=<checkpoint> to change it")
        if saved.num_samples != cur.num_samples or saved.seed != cur.seed:
            raise ResumeError(
                f"the checkpoint's data order was drawn over {saved.num_samples} samples with seed "
                f"{saved.seed}, this run has {cur.num_samples} samples and seed {cur.seed}: the data, "
                f"task.seq_len or seed changed; resume with the original ones or start a new run_dir")
        self.state = saved
