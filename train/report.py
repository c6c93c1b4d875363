"""End-of-demo report from eval's results: val loss vs the corpus' unigram entropy, QA accuracy
vs chance / majority class / a keyword rule before and after fine-tuning, run paths and loss-curve plots.

    python -m train.report --data runs/demo/data --pretrain runs/demo/pretrain \
        --finetune runs/demo/finetune --eval runs/demo/eval --out runs/demo/report.md

All scoring is eval's (`python -m eval`, see docs/eval.md); this reads its `results.json` files
under `--eval`: `perplexity/` (the pretrained checkpoint on the val split), `pubmedqa/` (the
fine-tuned checkpoint on the held-out demo QA test split) and, if present, `pubmedqa_pretrained/`
(the same items, pretrained checkpoint). Two numbers are computed here: the unigram entropy (the
loss of the best model that ignores context, which the validation loss must be well below) and
the keyword rule's QA accuracy (the demo's labels follow template phrases: what the QA number is worth).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from pathlib import Path

import numpy as np

from common.atomic import atomic_write_text
from data_prep.tokens.shards import TokenShards


def unigram_entropy(data_dir: str | Path, split: str = "train") -> float:
    """Entropy (nats/token) of the token unigram distribution of a shard split."""
    shards = TokenShards.from_manifest(data_dir, split=split)
    counts = np.zeros(shards.vocab_size, dtype=np.int64)
    step = 1 << 20
    for start in range(0, shards.num_tokens, step):
        counts += np.bincount(shards.window(start, min(step, shards.num_tokens - start)), minlength=shards.vocab_size)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def read_results(path: Path) -> dict:
    """An eval results.json (or the folder holding it)."""
    path = path / "results.json" if path.is_dir() else path
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SystemExit(f"error: {path} not found; run `python -m eval ... out_dir={path.parent}` first") from None
    except json.JSONDecodeError as e:
        raise SystemExit(f"error: {path}: not valid JSON ({e.msg}); rerun that eval step") from None


def qa_summary(results: dict) -> dict:
    """Accuracy, n, and the chance / majority-class baselines from eval's confusion matrix."""
    conf = results["extra"]["confusion"]
    gold = {label: sum(row) for label, row in zip(conf["rows_gold"], conf["matrix"], strict=True)}
    n = results["counts"]["evaluated"]
    return {"accuracy": results["metrics"]["accuracy"], "macro_f1": results["metrics"]["macro_f1"], "n": n,
            "chance": 1 / len(gold), "majority": max(gold.values()) / n, "label_counts": gold,
            "failed": results["counts"].get("failed", 0)}


# The demo QA label is fixed by template phrases of the generated results sentence
# (demo_corpus/vocab.py): this rule reads them and nothing else.
RULE_NO = ("no significant", "not associated", "did not differ significantly", "unexpectedly",
           "contrary to our hypothesis", "significantly higher risk")
RULE_MAYBE = ("inconclusive", "non-significant trend", "not consistent")


def keyword_rule(item: dict) -> str:
    """yes/no/maybe of a PQA-L item from keywords of the first sentence of its results section."""
    results = next((c for c, label in zip(item["CONTEXTS"], item["LABELS"], strict=False)
                    if str(label).upper() in ("RESULTS", "FINDINGS")), item["CONTEXTS"][-1])
    first = re.split(r"(?<=\))\.\s|\.\s(?=[A-Z])", results, maxsplit=1)[0].lower()
    if any(p in first for p in RULE_MAYBE):
        return "maybe"
    if any(p in first for p in RULE_NO):
        return "no"
    return "yes"


def rule_baseline(qa_dir: Path) -> dict:
    """The keyword rule's accuracy on the QA test items (pqal_test_set.json + test_ground_truth.json)."""
    try:
        items = json.loads((qa_dir / "pqal_test_set.json").read_text(encoding="utf-8"))
        gold = json.loads((qa_dir / "test_ground_truth.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise SystemExit(f"error: {qa_dir}: cannot read the demo QA test files ({e}); pass --qa-dir") from None
    hits = sum(keyword_rule(item) == gold[pmid] for pmid, item in items.items())
    return {"accuracy": hits / len(items), "n": len(items)}


def _run_info(run_dir: Path) -> dict:
    """Steps and tokens seen, from the run's status.json and metrics.csv (no checkpoint loading)."""
    info = {"steps": None, "tokens_seen": None}
    try:
        info["steps"] = json.loads((run_dir / "status.json").read_text())["step"]
    except (OSError, ValueError, KeyError):
        pass
    try:
        with open(run_dir / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        info["tokens_seen"] = int(rows[-1]["tokens_seen"]) if rows else None
    except (OSError, KeyError, ValueError):
        pass
    return info


def build_report(data: Path, pretrain: Path, finetune: Path | None, eval_dir: Path,
                 qa_dir: Path | None = None) -> tuple[str, dict]:
    H = unigram_entropy(data)
    ppl = read_results(eval_dir / "perplexity")
    val = ppl["metrics"]["nll_per_token"]
    run = _run_info(pretrain)
    m = {"unigram_entropy_nats": H, "val_loss_nats": val, "val_perplexity": ppl["metrics"]["perplexity"],
         "val_bits_per_byte": ppl["metrics"]["bits_per_byte"], "unigram_perplexity": math.exp(H),
         "pretrain_steps": run["steps"], "tokens_seen": run["tokens_seen"]}
    tokens = f"{run['tokens_seen']:,}" if run["tokens_seen"] is not None else "?"
    lines = ["# Demo report", "", "## Pretraining (tiny model, demo corpus, CPU)", "",
             f"- run dir: `{pretrain}` (metrics.csv, checkpoints/)", f"- steps: {run['steps']}, tokens seen: {tokens}",
             f"- validation loss: **{val:.3f} nats/token** (perplexity {m['val_perplexity']:.1f}, "
             f"{m['val_bits_per_byte']:.3f} bits/byte; {ppl['counts']['windows']} windows of {ppl['block_size']} "
             f"tokens; `{eval_dir / 'perplexity' / 'results.json'}`)",
             f"- unigram entropy of the demo corpus (train split): {H:.3f} nats/token (perplexity {math.exp(H):.1f})",
             f"- the model is {H - val:.2f} nats/token below the unigram entropy: it uses context",
             f"- loss curve: `{pretrain / 'loss_curve.png'}`"]
    if finetune is not None:
        after = qa_summary(read_results(eval_dir / "pubmedqa"))
        before_path = eval_dir / "pubmedqa_pretrained" / "results.json"
        before = qa_summary(read_results(before_path)) if before_path.is_file() else None
        ft = _run_info(finetune)
        m.update({"qa_accuracy": after["accuracy"], "qa_macro_f1": after["macro_f1"], "qa_chance": after["chance"],
                  "qa_majority": after["majority"], "qa_n": after["n"], "finetune_steps": ft["steps"],
                  "qa_failed": after["failed"], "qa_accuracy_before_finetune": before["accuracy"] if before else None})
        default_qa = data / "cache" / "demo_pubmedqa"  # where data_prep source=demo writes the QA set
        rule = rule_baseline(qa_dir) if qa_dir else (
            rule_baseline(default_qa) if (default_qa / "pqal_test_set.json").is_file() else None)
        m.update({"qa_keyword_rule_accuracy": rule["accuracy"] if rule else None})
        was = (f"; pretrained model before fine-tuning {before['accuracy']:.3f}, {before['failed']} of "
               f"{before['n']} without a yes/no/maybe answer" if before else "")
        lines += ["", "## Fine-tuning (demo PubMedQA-style set)", "",
                  f"- run dir: `{finetune}` (metrics.csv, checkpoints/), steps: {ft['steps']}",
                  f"- held-out test items: {after['n']} (labels {after['label_counts']}; "
                  f"`{eval_dir / 'pubmedqa' / 'results.json'}`)",
                  f"- accuracy: **{after['accuracy']:.3f}**, macro-F1 {after['macro_f1']:.3f}, "
                  f"{after['failed']} without an answer (chance "
                  f"{after['chance']:.3f}, majority class {after['majority']:.3f}{was})",
                  *([f"- keyword-rule baseline on the same {rule['n']} items: **{rule['accuracy']:.3f}** "
                     "(`train.report.keyword_rule`: a dozen phrases of the results sentence, no model)",
                     "- what this shows: the demo label is fixed by template phrases in the context, so the QA "
                     "number only shows that fine-tuning and answer extraction work end to end (the model learnt "
                     "the answer format and the phrases); it is not a measure of biomedical reasoning, and "
                     "a model below the rule has not yet learnt the phrases"] if rule else
                    [f"- keyword-rule baseline: not computed (no demo QA files in {default_qa}; pass --qa-dir)"]),
                  f"- loss curve: `{finetune / 'loss_curve.png'}`"]
    return "\n".join(lines) + "\n", m


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="data_prep out_dir")
    ap.add_argument("--pretrain", type=Path, required=True, help="pretraining run_dir")
    ap.add_argument("--finetune", type=Path, help="fine-tuning run_dir")
    ap.add_argument("--eval", type=Path, required=True, help="folder of the eval out_dirs (perplexity/, pubmedqa/, ...)")
    ap.add_argument("--out", type=Path, help="report.md path (default: <pretrain>/../report.md)")
    ap.add_argument("--qa-dir", type=Path, help="demo QA files (default: <data>/cache/demo_pubmedqa)")
    a = ap.parse_args(argv)
    text, metrics = build_report(a.data, a.pretrain, a.finetune, a.eval, a.qa_dir)
    out = a.out or a.pretrain.parent / "report.md"
    for path, body in ((out, text), (out.with_suffix(".json"), json.dumps(metrics, indent=2))):
        atomic_write_text(path, body)
    sys.stdout.write(text)
    print(f"report: {out}")


if __name__ == "__main__":
    main()
