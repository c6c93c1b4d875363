"""Perplexity per corpus generation (issue 13): a corpus grown by `append=true` is scored as a
whole (live documents only) and per generation, and results.md shows the table."""

from __future__ import annotations

import json
import shutil

import pytest

from eval.app import run
from eval.config import compose
from tests.data_prep.tokens.generations import append_generation

from .conftest import synthetic_texts

RETIRED = [0, 3, 4, 17]  # generation-1 val documents that generation 2 replaces


@pytest.fixture(scope="module")
def two_generations(tiny_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("gens") / "data"
    shutil.copytree(tiny_data["dir"], root)
    tok = tiny_data["tokenizer"]
    new_docs = [tok.encode(t).ids for t in synthetic_texts(30, seed=7)]
    append_generation(root, {"val": new_docs}, {"val": RETIRED})
    return root


def test_each_generation_is_scored_on_its_live_documents(tiny_checkpoint, two_generations, tmp_path):
    from data_prep.tokens.shards import TokenShards
    from eval.modeling import load
    from eval.perplexity import evaluate

    r = run(compose(["task=perplexity", f"checkpoint={tiny_checkpoint}", f"out_dir={tmp_path}",
                     f"task.data_dir={two_generations}", "task.block_size=32", "task.batch_size=4"]))
    by = r["by_generation"]
    assert list(by) == ["1", "2"]
    assert by["1"]["documents"] == 60 - len(RETIRED) and by["1"]["retired_documents"] == len(RETIRED)
    assert by["2"]["documents"] == 30 and by["2"]["retired_documents"] == 0
    assert r["counts"]["retired_documents"] == len(RETIRED)
    loaded = load(tiny_checkpoint)
    for g in ("1", "2"):
        alone = evaluate(loaded, TokenShards.from_manifest(two_generations, "val", generations=[int(g)]), 32, 4,
                         progress=False)
        assert by[g]["tokens"] == alone.tokens and by[g]["windows"] == alone.windows
        assert by[g]["bits_per_byte"] == pytest.approx(alone.bits_per_byte)
    # the whole split is the live documents of both: fewer tokens than the shards hold
    manifest = json.loads((two_generations / "manifest.json").read_text())
    whole = TokenShards.from_manifest(two_generations, "val")
    assert whole.num_tokens < manifest["splits"]["val"]["tokens"]
    assert r["counts"]["windows"] == (whole.num_tokens - 1) // 32
    md = (tmp_path / "results.md").read_text()
    assert "| generation | bits/byte |" in md
    assert f"| 1 | {by['1']['bits_per_byte']:.4f} |" in md and f"| 2 | {by['2']['bits_per_byte']:.4f} |" in md
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["by_generation"]["2"]["tokens"] == by["2"]["tokens"]


@pytest.fixture(scope="module")
def recorded_checkpoint(tiny_checkpoint, tmp_path_factory):
    """The tiny checkpoint with the record `python -m train` keeps: tokens trained per generation."""
    from common.checkpoint import atomic_torch_save, safe_load

    run_dir = tmp_path_factory.mktemp("recorded") / "run"
    shutil.copytree(tiny_checkpoint.parent.parent, run_dir)
    ckpt = safe_load(tiny_checkpoint)
    ckpt["biogpt_meta"]["data_generations"] = {"1": 40960}  # trained on generation 1 only
    atomic_torch_save(ckpt, run_dir / "checkpoints" / "last.ckpt")
    return run_dir / "checkpoints" / "last.ckpt"


def test_tokens_trained_per_generation_are_shown_beside_its_scores(recorded_checkpoint, tiny_checkpoint,
                                                                   two_generations, tmp_path):
    from common.checkpoint import load_model

    assert load_model(recorded_checkpoint)[2]["data_generations"] == {"1": 40960}
    assert load_model(tiny_checkpoint)[2]["data_generations"] is None
    args = [f"task.data_dir={two_generations}", "task.block_size=32", "task.max_windows=2"]
    r = run(compose(["task=perplexity", f"checkpoint={recorded_checkpoint}", f"out_dir={tmp_path / 'a'}", *args]))
    by = r["by_generation"]
    assert by["1"]["trained_tokens"] == 40960 and by["2"]["trained_tokens"] == 0  # generation 2: new to it
    saved = json.loads((tmp_path / "a" / "results.json").read_text())["by_generation"]
    assert [saved[g]["trained_tokens"] for g in ("1", "2")] == [40960, 0]
    md = (tmp_path / "a" / "results.md").read_text()
    assert "| generation | bits/byte | trained tokens | nll/token |" in md
    assert f"| 1 | {by['1']['bits_per_byte']:.4f} | 40960 | {by['1']['nll_per_token']:.4f} |" in md
    assert f"| 2 | {by['2']['bits_per_byte']:.4f} | 0 |" in md
    # a checkpoint without the record: the same table without the column, no error
    plain = run(compose(["task=perplexity", f"checkpoint={tiny_checkpoint}", f"out_dir={tmp_path / 'b'}", *args]))
    assert all("trained_tokens" not in m for m in plain["by_generation"].values())
    assert {g: m["bits_per_byte"] for g, m in plain["by_generation"].items()} == \
           pytest.approx({g: m["bits_per_byte"] for g, m in by.items()})
    assert "trained tokens" not in (tmp_path / "b" / "results.md").read_text()


def test_a_generation_too_short_for_a_window_is_reported_not_scored(tiny_checkpoint, two_generations, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(two_generations, data)
    append_generation(data, {"val": [[5, 6, 7, 8]]})  # generation 3: one 5-token document
    append_generation(data, {})  # generation 4: nothing in the val split (a small update)
    r = run(compose(["task=perplexity", f"checkpoint={tiny_checkpoint}", f"out_dir={tmp_path / 'out'}",
                     f"task.data_dir={data}", "task.block_size=32", "task.max_windows=2"]))
    by = r["by_generation"]
    assert by["3"] == {"documents": 1, "retired_documents": 0, "skipped": "5 tokens: fewer than one window of 33"}
    assert by["4"] == {"documents": 0, "retired_documents": 0, "skipped": "no live documents in the val split"}
    assert by["1"]["windows"] == by["2"]["windows"] == 2  # task.max_windows caps each generation too
    md = (tmp_path / "out" / "results.md").read_text()
    assert "| 3 | 5 tokens: fewer than one window of 33 |" in md and "| 4 | no live documents" in md


def test_a_single_generation_corpus_has_no_per_generation_section(tiny_checkpoint, tiny_data, tmp_path):
    r = run(compose(["task=perplexity", f"checkpoint={tiny_checkpoint}", f"out_dir={tmp_path}",
                     f"task.data_dir={tiny_data['dir']}", "task.block_size=32", "task.max_windows=2"]))
    assert "by_generation" not in r and r["counts"]["retired_documents"] == 0
