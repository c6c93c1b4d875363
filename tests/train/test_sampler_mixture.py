"""MixtureBatchSampler (continued pretraining with replay): the replay share is exact, the order a
function of (seed, step, rank), ranks disjoint, and the position resumable like ResumableBatchSampler's."""

from __future__ import annotations

import numpy as np
import pytest

from train.sampler import MixtureBatchSampler, ResumableBatchSampler, ResumeError

MAIN, REPLAY = 40, 25


def _sampler(rank=0, world=1, replay=0.25, seed=3, batch=4):
    return MixtureBatchSampler(MAIN, REPLAY, replay, batch, seed, rank, world)


def _batches(sampler, epochs=1):
    out = []
    for _ in range(epochs):
        for b in sampler:
            out.append(b)
            sampler.advance(len(b))
    return out


@pytest.mark.parametrize("replay", [0.0, 0.1, 0.25, 0.5])
def test_every_prefix_holds_the_replay_share(replay):
    batches = _batches(_sampler(replay=replay), epochs=3)
    flat = np.concatenate(batches)
    is_replay = flat >= MAIN
    for n in (1, 7, 40, len(flat)):
        assert is_replay[:n].sum() == int(n * replay + 1e-9)  # floor(n * replay), exactly
    # each part's indices stay in range and a part's epoch repeats nothing
    assert flat[~is_replay].max() < MAIN and flat.min() >= 0 and flat.max() < MAIN + REPLAY
    main = flat[~is_replay][:MAIN]
    assert len(set(main.tolist())) == len(main)


def test_order_depends_on_seed_and_step_only():
    a, b = _batches(_sampler(), 2), _batches(_sampler(), 2)
    assert a == b
    assert _batches(_sampler(seed=4), 1) != a[: len(a) // 2]
    s = _sampler()
    s.set_epoch(1)
    assert list(s) == a[len(a) // 2:]  # epoch 1 is the same batches whether reached or jumped to


def test_ranks_get_disjoint_batches_and_every_rank_knows_the_whole_step():
    ranks = [_sampler(rank=r, world=2) for r in range(2)]
    per_rank = [list(s) for s in ranks]
    assert len(per_rank[0]) == len(per_rank[1]) == (MAIN // 2) // 4
    main = [i for b in per_rank[0] + per_rank[1] for i in b if i < MAIN]
    assert len(main) == len(set(main))
    probe = _sampler(rank=0, world=2)
    for step in range(3):
        assert probe.next_global_batch().tolist() == per_rank[0][step] + per_rank[1][step]
        probe.advance(4)


def test_resumes_mid_epoch_and_refuses_other_data():
    s = _sampler()
    full = list(s)
    s.advance(3 * 4)
    t = _sampler()
    t.load_state_dict(s.state_dict())
    assert list(t) == full[3:]
    with pytest.raises(ResumeError, match=r"1/4.*this run has 25 at 1/2.*data.replay"):
        _sampler(replay=0.5).load_state_dict(s.state_dict())
    with pytest.raises(ResumeError, match="mixed in 25 replay samples"):
        ResumableBatchSampler(MAIN + REPLAY, 4, 3).load_state_dict(s.state_dict())
    with pytest.raises(ResumeError, match="had no replay"):
        _sampler().load_state_dict(ResumableBatchSampler(MAIN + REPLAY, 4, 3).state_dict())


def test_plain_sampler_knows_every_ranks_next_batch():
    ranks = [ResumableBatchSampler(50, 4, 3, r, 2) for r in range(2)]
    firsts = [list(s) for s in ranks]
    probe = ResumableBatchSampler(50, 4, 3, 1, 2)
    for step in range(len(firsts[0])):
        assert probe.next_global_batch().tolist() == firsts[0][step] + firsts[1][step]
        probe.advance(4)
    assert probe.state.epoch == 1 and probe.state.consumed == 0
