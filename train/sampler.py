"""A resumable, rank-sharded batch sampler whose position is part of the training checkpoint.

The order of an epoch is a permutation drawn from (seed, epoch) alone; rank r takes every
world_size-th index of it (the tail that does not divide evenly is dropped so all ranks run the
same number of steps). The sampler runs in the main process, so the order does not depend on
`num_workers`, and `consumed` counts samples handed to the training step (not the ones the
DataLoader prefetched), so a checkpoint says exactly where the next batch starts.

We keep this state ourselves instead of relying on Lightning/litdata dataloader-state restoration,
whose open bugs repeat or skip data after a resume.

`MixtureBatchSampler` (continued pretraining, docs/training.md) draws a fixed fraction of every
batch from a second ("replay") part of the dataset; which sample a batch holds is a function of
(seed, step, rank) alone, so its position is the same two numbers as above.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction

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

    def next_global_batch(self) -> np.ndarray:
        """The indices the next step trains on, on every rank (what each rank's `__iter__` yields
        next): every rank can count what the whole step consumes without talking to the others."""
        s = self.state
        key = (s.epoch, s.seed, s.num_samples, s.world_size)
        if getattr(self, "_order_key", None) != key:  # one permutation per epoch, as __iter__ draws it
            self._order = (np.random.default_rng([s.seed, s.epoch]).permutation(s.num_samples) if self.shuffle
                           else np.arange(s.num_samples))
            self._order_key = key
        per_rank = len(self) * self.batch_size
        return np.concatenate([self._order[r::s.world_size][:per_rank][s.consumed:s.consumed + self.batch_size]
                               for r in range(s.world_size)])

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
        if "num_replay" in d and type(self) is ResumableBatchSampler:
            raise ResumeError(f"the checkpoint's data order mixed in {d['num_replay']} replay samples "
                              f"(data.replay={d['replay']}), this run has none: data.replay, data.generations or "
                              "the data changed; resume with the original ones or start a new run_dir")
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


@dataclass
class MixtureState(SamplerState):
    num_replay: int = 0  # samples [num_samples - num_replay, num_samples) are the replay part
    replay: str = "0"  # fraction of every batch from the replay part, as an exact "p/q"


class MixtureBatchSampler(ResumableBatchSampler):
    """Batches mixing a main part [0, num_main) and a replay part [num_main, num_main + num_replay)
    of a dataset, the replay part taking `replay` of the samples.

    The samples of the whole run form one global sequence: position n = (step * world_size +
    rank) * batch_size + i. Position n is a replay sample iff floor((n + 1) r) > floor(n r) (r the
    replay fraction as an exact fraction), so every prefix of the run holds floor(n r) replay
    samples, spread evenly. The k-th sample of a part is its epoch's permutation (seed, part,
    epoch = k // part size) at k % part size. So a batch depends on (seed, step, rank) only: no
    state but the step, and rank r's batches are disjoint from the other ranks' within a part's
    epoch. An "epoch" here is bookkeeping for Lightning (the batches the main part alone fills).
    """

    def __init__(self, num_main: int, num_replay: int, replay: float, batch_size: int, seed: int, rank: int = 0,
                 world_size: int = 1):
        super().__init__(num_main, batch_size, seed, rank, world_size)
        if num_replay < 1:
            raise ValueError("the replay part is empty; use ResumableBatchSampler")
        frac = Fraction(replay).limit_denominator(1_000_000)
        if not 0 <= frac < 1:
            raise ValueError(f"replay must be in [0, 1), got {replay}")
        self.frac = frac
        self.num_main = num_main
        self.state = MixtureState(seed=seed, world_size=world_size, num_samples=num_main + num_replay,
                                  num_replay=num_replay, replay=f"{frac.numerator}/{frac.denominator}")
        self._perms: dict[tuple[int, int], np.ndarray] = {}

    def __len__(self) -> int:
        return (self.num_main // self.state.world_size) // self.batch_size

    def _perm(self, part: int, epoch: int, size: int) -> np.ndarray:
        key = (part, epoch)
        if key not in self._perms:
            if len(self._perms) >= 4:  # a batch touches at most two epochs of each part
                self._perms.pop(next(iter(self._perms)))
            self._perms[key] = np.random.default_rng([self.state.seed, part, epoch]).permutation(size)
        return self._perms[key]

    def positions_to_indices(self, n: np.ndarray) -> np.ndarray:
        """Dataset indices of global sample positions `n` (int64 array)."""
        p, q = self.frac.numerator, self.frac.denominator
        replays_before = n * p // q
        is_replay = (n + 1) * p // q > replays_before
        out = np.empty(n.shape, dtype=np.int64)
        for part, mask, k, size, base in ((0, ~is_replay, n - replays_before, self.num_main, 0),
                                          (1, is_replay, replays_before, self.state.num_replay, self.num_main)):
            k = k[mask]
            vals = np.empty(k.shape, dtype=np.int64)
            for epoch in np.unique(k // size):
                sel = k // size == epoch
                vals[sel] = self._perm(part, int(epoch), size)[k[sel] % size] + base
            out[mask] = vals
        return out

    def _positions(self, steps: np.ndarray, ranks: np.ndarray) -> np.ndarray:
        """(len(steps), len(ranks) * batch_size) global positions of those steps' batches."""
        b, w = self.batch_size, self.state.world_size
        first = (steps[:, None] * w + ranks[None, :]) * b  # (S, R)
        return (first[:, :, None] + np.arange(b)).reshape(len(steps), -1)

    def epoch_indices(self, epoch: int) -> np.ndarray:
        steps = np.arange(epoch * len(self), (epoch + 1) * len(self), dtype=np.int64)
        return self.positions_to_indices(self._positions(steps, np.array([self.rank])).reshape(-1))

    def next_global_batch(self) -> np.ndarray:
        step = self.state.epoch * len(self) + self.state.consumed // self.batch_size
        ranks = np.arange(self.state.world_size)
        return self.positions_to_indices(self._positions(np.array([step], dtype=np.int64), ranks).reshape(-1))

    def load_state_dict(self, d: dict) -> None:
        saved = MixtureState(**d) if "num_replay" in d else None
        cur = self.state
        if saved is None or (saved.num_replay, saved.replay) != (cur.num_replay, cur.replay):
            was = f"{saved.num_replay} replay samples at {saved.replay}" if saved else "no replay"
            raise ResumeError(f"the checkpoint's data order had {was}, this run has {cur.num_replay} at "
                              f"{cur.replay}: data.replay, data.generations or the data changed; resume with "
                              "the original ones or start a new run_dir")
        super().load_state_dict({k: v for k, v in d.items() if k not in ("num_replay", "replay")})
        self.state = saved
