"""The module and its checkpoints: NaN skipping, decay groups, safe loading, secrets, load_model."""

from __future__ import annotations

import json
import math
import pickle

import pytest
import torch

from tasks.pubmedqa import LABELS

from .conftest import ROOT, compose, read_losses, tiny_overrides


def _run(data, run_dir, steps=6, extra=()):
    from train.run import run

    return run(compose(tiny_overrides(data, run_dir, steps, tuple(extra))))


def test_weight_decay_groups():
    from model import Decoder, ModelConfig
    from train.optim import param_groups

    model = Decoder(ModelConfig.from_name("tiny"))
    decay, no_decay = param_groups(model, 0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    kept = {names[id(p)] for p in no_decay["params"]}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert "embed.tok.weight" in kept  # the (tied) token embedding
    assert any(n.endswith("attn.qkv.weight") for n in decayed)
    assert not any(n.endswith((".bias", "ln_1.weight", "ln_f.weight")) for n in decayed)
    assert all(not n.endswith("attn.qkv.weight") for n in kept)
    assert len(decayed) + len(kept) == len(list(model.parameters()))


def test_schedule_warmup_then_cosine_to_floor():
    from train.optim import lr_factor

    f = [lr_factor(s, 10, 100, "cosine", 0.1) for s in range(120)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[10:], f[11:], strict=False))
    assert f[100] == pytest.approx(0.1) and f[119] == pytest.approx(0.1)
    assert lr_factor(55, 10, 100, "linear", 0.0) == pytest.approx(0.5)


def test_nan_loss_is_skipped_with_warning(token_data, tmp_path):
    with pytest.warns(RuntimeWarning, match="non-finite loss"):
        result = _run(token_data, tmp_path, 6, ["debug.nan_at_batches=[2]"])
    assert result.state == "completed" and result.step == 6  # the bad batch did not count as a step
    losses = read_losses(tmp_path)
    assert sorted(losses) == list(range(1, 7)) and all(math.isfinite(v) for v in losses.values())


def test_too_many_nans_stop_with_checkpoint_from_before(token_data, tmp_path):
    from common.checkpoint import model_state, safe_load
    from train.module import TrainingDiverged

    with pytest.raises(TrainingDiverged, match="max_nan_skips=2") as e:
        _run(token_data, tmp_path, 8, ["debug.nan_at_batches=[3,4,5]", "trainer.max_nan_skips=2"])
    ckpt_path = tmp_path / "checkpoints" / "diverged-step3.ckpt"
    assert str(ckpt_path) in str(e.value)
    ckpt = safe_load(ckpt_path)
    assert ckpt["global_step"] == 3
    last = safe_load(tmp_path / "checkpoints" / "last.ckpt")  # written after step 2 (every 2 steps)
    # No update happened between step 3 and the stop: weights equal those trained for 3 steps,
    # which differ from step 2's; all finite.
    w = model_state(ckpt)
    assert all(torch.isfinite(v).all() for v in w.values() if v.is_floating_point())
    assert last["global_step"] == 2
    assert json.loads((tmp_path / "status.json").read_text())["state"] == "diverged"


def test_checkpoint_files_hold_no_secret_and_load_model_works(token_data, tmp_path, monkeypatch):
    secret = "wandb-key-0123456789abcdef-DO-NOT-LEAK"
    monkeypatch.setenv("WANDB_API_KEY", secret)
    monkeypatch.setenv("HF_TOKEN", "hf_" + secret)
    monkeypatch.setenv("WANDB_MODE", "offline")  # the default logger, with no network
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    _run(token_data, tmp_path, 4, ["logger=wandb"])
    run_id = (tmp_path / "wandb_run_id.txt").read_text().strip()
    assert list((tmp_path / "wandb").glob(f"offline-run-*-{run_id}")), "offline wandb run not in run_dir"
    assert (tmp_path / "loss_curve.png").stat().st_size > 1000
    for p in tmp_path.rglob("*"):
        if p.is_file():
            assert secret.encode() not in p.read_bytes(), f"secret written into {p}"
    from common.checkpoint import load_model

    model, tok, info = load_model(tmp_path / "checkpoints" / "last.ckpt")
    assert info["step"] == 4 and info["task"] == "pretrain" and tok is not None
    ids = torch.tensor([tok.encode("cells protein gene").ids])
    assert model(ids).shape == (1, ids.shape[1], model.config.vocab_size)
    assert not model.training
    # the data_prep manifest, absolute, for eval's contamination check (which prefers this key)
    assert info["data_manifest"] == str((token_data / "manifest.json").resolve())
    from eval.contamination import manifest_from_info

    assert manifest_from_info(info) == token_data.resolve() / "manifest.json"


def test_load_model_does_not_import_lightning():
    import subprocess
    import sys

    code = "import sys, common.checkpoint; sys.exit(int(any(m.startswith(('lightning', 'pytorch_lightning')) for m in sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=120).returncode == 0, \
        "common.checkpoint imports Lightning; eval imports load_model from it"


def test_tampered_checkpoint_is_refused(tmp_path):
    from common.checkpoint import CheckpointError, load_model, safe_load

    class Evil:
        def __reduce__(self):
            return (print, ("code ran",))

    bad = tmp_path / "evil.ckpt"
    with open(bad, "wb") as f:
        pickle.dump({"state_dict": {}, "x": Evil()}, f)
    with pytest.raises(CheckpointError, match="refusing to load.*tampered"):
        safe_load(bad)
    trunc = tmp_path / "trunc.ckpt"
    torch.save({"state_dict": {"model.w": torch.zeros(1000)}}, trunc)
    trunc.write_bytes(trunc.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="trunc.ckpt"):
        load_model(trunc)


def test_world_size_change_is_a_clear_error():
    from train.sampler import ResumableBatchSampler, ResumeError

    saved = ResumableBatchSampler(100, 4, seed=1, rank=0, world_size=2)
    saved.advance(8)
    now = ResumableBatchSampler(100, 4, seed=1, rank=0, world_size=1)
    with pytest.raises(ResumeError, match="2 data-parallel ranks, this run has 1"):
        now.load_state_dict(saved.state_dict())


def test_sampler_shards_ranks_and_resumes_mid_epoch():
    from train.sampler import ResumableBatchSampler

    ranks = [ResumableBatchSampler(50, 4, seed=3, rank=r, world_size=2) for r in range(2)]
    a, b = (sum(list(s), []) for s in ranks)
    assert not set(a) & set(b) and len(a) == len(b) == 24  # disjoint, equal, whole batches
    s = ResumableBatchSampler(50, 4, seed=3)
    full = list(s)
    s.advance(3 * 4)
    t = ResumableBatchSampler(50, 4, seed=3)
    t.load_state_dict(s.state_dict())
    assert list(t) == full[3:]
    t.set_epoch(1)
    assert list(t) != full and len(list(t)) == len(full)


@pytest.mark.gpu
def test_bf16_steps_on_gpu(token_data, tmp_path):
    result = _run(token_data, tmp_path, 3, ["trainer=gpu", "trainer.compile=false", "trainer.progress_bar=false",
                                            "trainer.val_check_interval=3", "trainer.checkpoint_every_n_steps=2"])
    assert result.state == "completed"
    assert all(math.isfinite(v) for v in read_losses(tmp_path).values())


def test_report_reads_eval_results(token_data, tmp_path):
    import json

    import numpy as np

    from data_prep.tokens.shards import TokenShards
    from eval.report import write
    from train.report import build_report, unigram_entropy

    sh = TokenShards.from_manifest(token_data, "train")
    counts = np.bincount(sh.window(0, sh.num_tokens), minlength=sh.vocab_size)
    p = counts[counts > 0] / counts.sum()
    H = float(-(p * np.log(p)).sum())
    assert unigram_entropy(token_data) == pytest.approx(H)

    # results.json as eval writes them (eval.report.write), for the three demo eval steps
    write(tmp_path / "eval" / "perplexity", {
        "task": "perplexity", "source": "pre.ckpt", "block_size": 32,
        "metrics": {"perplexity": math.exp(1.5), "bits_per_byte": 0.9, "nll_per_token": 1.5},
        "counts": {"tokens": 320, "bytes": 900, "windows": 10}, "extra": {}})
    for name, matrix in (("pubmedqa", [[5, 1, 0, 0], [1, 2, 0, 0], [0, 0, 1, 0]]),
                         ("pubmedqa_pretrained", [[6, 0, 0, 0], [3, 0, 0, 0], [1, 0, 0, 0]])):
        acc = sum(matrix[i][i] for i in range(3)) / 10
        write(tmp_path / "eval" / name, {
            "task": "pubmedqa", "source": "x.ckpt", "metrics": {"accuracy": acc, "macro_f1": 0.5},
            "counts": {"evaluated": 10, "missing": 0, "unknown_ids": 0, "failed": 0},
            "extra": {"confusion": {"rows_gold": list(LABELS), "columns_pred": [*LABELS, "other"],
                                    "matrix": matrix}}})
    for run, step in (("pre", 200), ("ft", 150)):
        (tmp_path / run).mkdir()
        (tmp_path / run / "status.json").write_text(json.dumps({"state": "completed", "step": step}))
        (tmp_path / run / "metrics.csv").write_text(f"step,loss,tokens_seen\n{step},2.0,{step * 64}\n")
    text, m = build_report(token_data, tmp_path / "pre", tmp_path / "ft", tmp_path / "eval")
    assert m["val_loss_nats"] == 1.5 and m["unigram_entropy_nats"] == pytest.approx(H)
    assert (m["pretrain_steps"], m["tokens_seen"], m["finetune_steps"]) == (200, 12800, 150)
    assert (m["qa_accuracy"], m["qa_accuracy_before_finetune"], m["qa_n"]) == (0.8, 0.6, 10)
    assert m["qa_majority"] == pytest.approx(0.6) and m["qa_chance"] == pytest.approx(1 / 3)
    assert "**0.800**" in text and "before fine-tuning 0.600, 0 of 10 without" in text and str(tmp_path / "pre" / "loss_curve.png") in text
