"""PubMedQA likelihood scoring with length normalisation (per token, per byte; lm-eval's acc_norm)."""

from __future__ import annotations

import json

import pytest

from tasks.pubmedqa import TASK, likelihood_picks


def test_normalisation_can_overturn_the_summed_pick():
    # option 0: short and likely in sum; option 1: longer, better per token; option 2: best per byte
    scores, n_tokens, n_bytes = [-3.0, -4.0, -4.5], [1, 4, 3], [3, 6, 9]
    assert likelihood_picks(scores, n_tokens, n_bytes) == {"sum": 0, "token": 1, "byte": 2}


def test_equal_lengths_give_the_same_pick_and_ties_take_the_first():
    assert likelihood_picks([-2.0, -1.0, -5.0], [2, 2, 2], [4, 4, 4]) == {"sum": 1, "token": 1, "byte": 1}
    assert likelihood_picks([-1.0, -1.0], [1, 1], [2, 2]) == {"sum": 0, "token": 0, "byte": 0}


@pytest.fixture
def bench(tmp_path):
    (tmp_path / "gold.json").write_text(json.dumps({"1": "yes", "2": "no", "3": "maybe", "4": "yes"}))
    return TASK.test_set({"test": tmp_path / "test.json", "gold": tmp_path / "gold.json"})


def test_normalised_accuracy_counts_each_normalisation(bench):
    picks = {"1": {"sum": "yes", "token": "no", "byte": "yes"},
             "2": {"sum": "yes", "token": "no", "byte": "no"},
             "3": {"sum": "yes", "token": "maybe", "byte": "no"}}  # "4" has no picks: counted wrong
    got = bench.normalised_accuracy(picks, ["1", "2", "3", "4"])
    assert got == {"accuracy_norm_token": pytest.approx(2 / 4), "accuracy_norm_byte": pytest.approx(2 / 4)}
    assert bench.normalised_accuracy(picks, ["1"]) == {"accuracy_norm_token": 0.0, "accuracy_norm_byte": 1.0}
