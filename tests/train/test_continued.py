"""Continued pretraining (issue 13): generation 1 -> train N steps -> append generation 2 ->
continue M steps from that checkpoint with replay of generation 1. The checkpoint records the
tokens trained on per generation; an interrupted continuation resumes with the uninterrupted one's
per-step losses (as in test_resume.py); resuming the generation-1 run on the grown corpus says to
continue with task.init_from instead."""

from __future__ import annotations

import csv
import json
import shutil
from types import SimpleNamespace

import pytest

from common.config import ConfigError

from .conftest import append_text_generation, compose, read_losses, tiny_overrides, write_token_data

N, M = 4, 8  # steps on generation 1, then of the continuation
B, T = 4, 32  # tiny_overrides' batch size and window
REPLAY = 0.25
EXTRA = ("model.dropout=0.1",)  # dropout on: the RNG stream must resume too
RETIRED = {"train": [0, 5, 6, 50], "val": [2]}  # generation-1 documents generation 2 replaces


def _run(data, run_dir, steps, extra=()):
    from train.run import run

    return run(compose(tiny_overrides(data, run_dir, steps, EXTRA + tuple(extra))))


@pytest.fixture(scope="module")
def cont(tmp_path_factory):
    base = tmp_path_factory.mktemp("continued")
    data = write_token_data(base / "data")
    first = _run(data, base / "gen1", N)
    assert first.state == "completed"
    append_text_generation(data, 80, RETIRED)  # in place, as append=true grows the same out_dir
    ckpt = base / "gen1" / "checkpoints" / "last.ckpt"
    with_replay = (f"task.init_from={ckpt}", f"data.replay={REPLAY}")
    ref = _run(data, base / "ref", M, with_replay)
    return SimpleNamespace(data=data, ckpt=ckpt, with_replay=with_replay, ref=ref, ref_dir=base / "ref")


def _meta(run_dir):
    from common.checkpoint import safe_load

    return safe_load(run_dir / "checkpoints" / "last.ckpt")["biogpt_meta"]


def test_resuming_the_old_run_on_the_grown_corpus_says_to_continue_with_init_from(cont):
    from train.sampler import ResumeError

    with pytest.raises(ResumeError, match=r"now holds generation\(s\) 2 .*appended since.*task\.init_from="):
        _run(cont.data, cont.ckpt.parent.parent, N + 2)


def test_continuation_trains_on_the_new_generation_with_replay_and_records_tokens(cont):
    assert cont.ref.state == "completed" and sorted(read_losses(cont.ref_dir)) == list(range(1, M + 1))
    replayed = int(M * B * REPLAY)  # world size 1: every prefix holds floor(n * replay) replay windows
    expected = {"1": N * B * T + replayed * T, "2": (M * B - replayed) * T}
    meta = _meta(cont.ref_dir)
    assert meta["data_generations"] == expected
    assert meta["data_plan"] == {"corpus": [1, 2], "new": [2], "old": [1], "replay": REPLAY}
    assert json.loads((cont.ref_dir / "status.json").read_text())["data_generations"] == expected
    assert _meta(cont.ckpt.parent.parent)["data_generations"] == {"1": N * B * T}
    with open(cont.ref_dir / "val_generations.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {(r["step"], r["generation"]) for r in rows} == {(s, g) for s in ("3", "6") for g in ("1", "2")}
    with open(cont.ref_dir / "val_metrics.csv", newline="") as f:
        assert [r["step"] for r in csv.DictReader(f)] == ["3", "6"]


def test_interrupted_continuation_resumes_exactly(cont, tmp_path):
    first = _run(cont.data, tmp_path, M, (*cont.with_replay, f"debug.sigterm_at_step={M // 2}"))
    assert first.state == "preempted" and first.step == M // 2
    second = _run(cont.data, tmp_path, M, cont.with_replay)  # resume=auto
    assert second.state == "completed"
    ref, got = read_losses(cont.ref_dir), read_losses(tmp_path)
    assert sorted(got) == list(range(1, M + 1))
    for step, loss in ref.items():
        assert abs(got[step] - loss) <= 1e-6, f"step {step}: {got[step]} vs uninterrupted {loss}"
    assert _meta(tmp_path)["data_generations"] == _meta(cont.ref_dir)["data_generations"]


def test_changed_replay_on_resume_is_refused(cont, tmp_path):
    from train.sampler import ResumeError

    run_dir = tmp_path / "ref"
    shutil.copytree(cont.ref_dir, run_dir)
    with pytest.raises(ResumeError, match=r"replaying \[1\] at 0.25.*at 0.5: data.generations, data.replay"):
        _run(cont.data, run_dir, M + 2, (cont.with_replay[0], "data.replay=0.5"))


def test_a_checkpoint_that_saw_every_generation_has_nothing_new(cont, tmp_path):
    seen_all = cont.ref_dir / "checkpoints" / "last.ckpt"
    with pytest.raises(ConfigError, match=r"data.generations.*already trained on every generation .*\(1, 2\)"):
        _run(cont.data, tmp_path, 2, (f"task.init_from={seen_all}",))
    with pytest.raises(ConfigError, match=r"data.generations.*3 not in .*its generations: 1, 2"):
        _run(cont.data, tmp_path, 2, ("data.generations=[3]",))


def test_fresh_run_on_two_generations_trains_on_every_live_document(cont, tmp_path):
    result = _run(cont.data, tmp_path, 3)
    assert result.state == "completed"
    meta = _meta(tmp_path)
    assert meta["data_plan"] == {"corpus": [1, 2], "new": [1, 2], "old": [], "replay": 0.0}
    record = meta["data_generations"]
    assert set(record) <= {"1", "2"} and sum(record.values()) == 3 * B * T


def test_eval_reports_the_continuation_per_generation(cont, tmp_path):
    from eval.app import run
    from eval.config import compose as eval_compose

    r = run(eval_compose(["task=perplexity", f"checkpoint={cont.ref_dir / 'checkpoints' / 'last.ckpt'}",
                          f"out_dir={tmp_path}", f"task.data_dir={cont.data}", "task.block_size=32"]))
    assert set(r["by_generation"]) == {"1", "2"}
    assert r["by_generation"]["1"]["retired_documents"] == len(RETIRED["val"])
    assert all(m["bits_per_byte"] > 0 for m in r["by_generation"].values())


def test_checkpoints_from_before_generations_saw_generation_1_of_their_own_corpus(tmp_path):
    from train.generations import seen_by_init

    data = tmp_path / "data"
    data.mkdir()
    old = {"task": "pretrain", "tokens_seen": 4096, "data_manifest": str(data / "manifest.json")}
    assert seen_by_init(old, data) == {"1": 4096}
    assert seen_by_init(old, tmp_path / "another") == {}  # another corpus: nothing of it seen
    assert seen_by_init({**old, "task": "pubmedqa"}, data) == {}
    assert seen_by_init({**old, "data_generations": {"1": 10, "2": 5}}, data) == {"1": 10, "2": 5}


def test_a_new_generation_too_small_for_a_batch_says_so(cont, tmp_path):
    from tests.data_prep.tokens.generations import append_generation

    data = tmp_path / "data"
    shutil.copytree(cont.data, data)
    append_generation(data, {"train": [[5, 6, 7]], "val": []})  # generation 3: one 4-token document
    with pytest.raises(ValueError, match=r"generation\(s\) \[3\] hold 0 training windows of 33 tokens"):
        _run(data, tmp_path / "run", 2, (f"task.init_from={cont.ref_dir / 'checkpoints' / 'last.ckpt'}",))
