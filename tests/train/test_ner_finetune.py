"""A tiny model fine-tuned on NER (task=ncbi_disease, generated PubTator files) and evaluated with
`python -m eval`: the generic train/eval code runs a new task from its module and YAML alone."""

from __future__ import annotations

import json
import random

from .conftest import WORDS, compose, read_losses, tiny_overrides

DISEASES = ("tumor", "cancer", "infarction", "fever")


def write_pubtator(path, n: int, first: int, seed: int = 0):
    rng = random.Random(seed)
    lines = []
    for i in range(first, first + n):
        disease = rng.choice(DISEASES)
        title = f"{rng.choice(WORDS)} {disease} {rng.choice(WORDS)}"
        lines += [f"{i}|t|{title}", f"{i}|a|{' '.join(rng.choice(WORDS) for _ in range(8))}",
                  f"{i}\t{len(title.split()[0]) + 1}\t0\t{disease}\tSpecificDisease\tD0", ""]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_ncbi_disease_finetune_then_eval(token_data, tmp_path):
    from eval.app import run as evaluate
    from eval.config import compose as eval_compose
    from train.run import run

    train = write_pubtator(tmp_path / "train.txt", 16, 100)
    test = write_pubtator(tmp_path / "test.txt", 3, 900, seed=1)
    ft = tmp_path / "ft"
    result = run(compose(tiny_overrides(token_data, ft, 3, (
        "task=ncbi_disease", f"task.files.train={train}", f"task.files.val={train}", "task.seq_len=48"))))
    assert result.state == "completed" and sorted(read_losses(ft)) == [1, 2, 3]
    # The token fixture's manifest lists no documents: an empty list says none of them is a test PMID.
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({**json.loads((token_data / "manifest.json").read_text()), "documents": []}))
    out = tmp_path / "eval"
    r = evaluate(eval_compose(["task=ncbi_disease", f"checkpoint={ft / 'checkpoints' / 'last.ckpt'}",
                               f"out_dir={out}", f"task.files.test={test}", "generation.max_new_tokens=6",
                               f"train_manifest={manifest}"]))
    assert r["counts"]["evaluated"] == 3 and r["counts"]["missing"] == 0
    assert set(r["extra"]["per_type"]) == {"disease"} and 0.0 <= r["metrics"]["f1"] <= 1.0
    saved = json.loads((out / "results.json").read_text())
    assert {"precision", "recall", "f1", "per_type"} <= set(saved) and saved["per_type"]["disease"]["n_gold"] == 3
    assert "| disease |" in (out / "results.md").read_text()
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 3
