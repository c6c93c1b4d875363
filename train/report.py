"""End-of-demo report: perplexity vs the corpus' unigram entropy, QA accuracy vs chance, paths, plot.

    python -m train.report --data runs/demo/data --pretrain runs/demo/pretrain \
        --finetune runs/demo/finetune --qa runs/demo/qa/pqal_test_set.json --out runs/demo/report.md

Evaluation proper (BioGPT's benchmarks) lives in eval/; this is the quick check that the demo
model learnt: the validation loss must be well below the unigram entropy (what a model that
ignores context gets at best), and QA accuracy on held-out items clearly above chance.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm


def unigram_entropy(data_dir: str | Path, split: str = "train") -> float:
    """Entropy (nats/token) of the token unigram distribution of a shard split."""
    from data_prep.shards import TokenShards

    shards = TokenShards.from_manifest(data_dir, split=split)
    counts = np.zeros(shards.vocab_size, dtype=np.int64)
    step = 1 << 20
    for start in range(0, shards.num_tokens, step):
        counts += np.bincount(shards.window(start, min(step, shards.num_tokens - start)), minlength=shards.vocab_size)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


@torch.no_grad()
def eval_loss(model, data_dir: str | Path, seq_len: int, split: str = "val", batch_size: int = 16,
              max_windows: int = 512) -> float:
    """Mean next-token loss (nats) over the split's packed windows (same windows as training's val)."""
    from data_prep.shards import TokenShards
    from model import chunked_cross_entropy

    from .data import PackedWindows

    ds = PackedWindows(TokenShards.from_manifest(data_dir, split=split), seq_len)
    n = min(len(ds), max_windows)
    total, count = 0.0, 0
    for s in tqdm(range(0, n, batch_size), desc=f"{split} loss", leave=False):
        x = torch.from_numpy(np.stack([ds[i] for i in range(s, min(n, s + batch_size))]))
        h = model(x[:, :-1], return_hidden=True)
        k = x[:, 1:].numel()
        total += float(chunked_cross_entropy(h, model.head_weight, x[:, 1:])) * k
        count += k
    return total / max(count, 1)


@torch.no_grad()
def qa_accuracy(model, tok, qa_file: str | Path, seq_len: int, batch_size: int = 16) -> dict:
    """PubMedQA-style accuracy: after `source + "the answer to the question given the context is"`,
    the answer whose first token is most likely wins (greedy decoding would pick the same one;
    scoring whole answers would favour answers that happen to be one token long)."""
    from .finetune_data import PUBMEDQA_LABELS, PUBMEDQA_TEMPLATE, load_examples

    ds = load_examples("pubmedqa", qa_file)
    cands = [tok.encode(" " + PUBMEDQA_TEMPLATE.format(a), add_special_tokens=False).ids for a in PUBMEDQA_LABELS]
    k = 0  # length of the prefix the three answers share
    while all(len(c) > k for c in cands) and len({c[k] for c in cands}) == 1:
        k += 1
    prefix, first = cands[0][:k], [c[k] for c in cands]
    if len(set(first)) != len(first):
        raise ValueError("the answers' first tokens coincide; cannot score them by one token")
    rows = list(ds)
    correct, gold = 0, Counter()
    for s in tqdm(range(0, len(rows), batch_size), desc="QA", leave=False):
        chunk = rows[s:s + batch_size]
        seqs = [tok.encode(r["source"], add_special_tokens=False).ids[: seq_len - k] + prefix for r in chunk]
        T = max(len(q) for q in seqs)
        ids = torch.full((len(seqs), T), 1, dtype=torch.long)  # right padding (pad id 1): causal, harmless
        for i, q in enumerate(seqs):
            ids[i, : len(q)] = torch.tensor(q)
        logits = model(ids)  # (B, T, V)
        last = torch.tensor([len(q) - 1 for q in seqs])
        scores = logits[torch.arange(len(seqs)), last][:, first]  # (B, 3)
        for r, j in zip(chunk, scores.argmax(-1).tolist(), strict=True):
            correct += PUBMEDQA_LABELS[j] == r["label"]
            gold[r["label"]] += 1
    n = len(rows)
    return {"n": n, "accuracy": correct / n, "chance": 1 / 3, "majority": max(gold.values()) / n,
            "label_counts": dict(gold)}


def _last_row(path: Path) -> dict | None:
    import csv

    if not path.is_file():
        return None
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return rows[-1] if rows else None


def build_report(data: Path, pretrain: Path, finetune: Path | None, qa: Path | None) -> tuple[str, dict]:
    from .checkpoint import load_model

    H = unigram_entropy(data)
    model, tok, info = load_model(pretrain / "checkpoints" / "last.ckpt")
    seq_len = info["config"]["task"]["seq_len"]
    val = eval_loss(model, data, seq_len)
    m = {"unigram_entropy_nats": H, "val_loss_nats": val, "val_perplexity": math.exp(val),
         "unigram_perplexity": math.exp(H), "pretrain_steps": info["step"], "tokens_seen": info["tokens_seen"]}
    lines = ["# Demo report", "", "## Pretraining (tiny model, demo corpus, CPU)", "",
             f"- run dir: `{pretrain}` (metrics.csv, loss_curve.png, checkpoints/)",
             f"- steps: {info['step']}, tokens seen: {info['tokens_seen']:,}",
             f"- validation loss: **{val:.3f} nats/token** (perplexity {math.exp(val):.1f})",
             f"- unigram entropy of the demo corpus (train split): {H:.3f} nats/token (perplexity {math.exp(H):.1f})",
             f"- the model is {H - val:.2f} nats/token below the unigram entropy: it uses context",
             f"- loss curve: `{pretrain / 'loss_curve.png'}`"]
    if finetune is not None and qa is not None:
        ft_model, ft_tok, ft_info = load_model(finetune / "checkpoints" / "last.ckpt")
        acc = qa_accuracy(ft_model, ft_tok, qa, ft_info["config"]["task"]["seq_len"])
        base = qa_accuracy(model, tok, qa, ft_info["config"]["task"]["seq_len"])
        m.update({"qa_accuracy": acc["accuracy"], "qa_chance": acc["chance"], "qa_majority": acc["majority"],
                  "qa_n": acc["n"], "qa_accuracy_before_finetune": base["accuracy"], "finetune_steps": ft_info["step"]})
        lines += ["", "## Fine-tuning (demo PubMedQA-style set)", "",
                  f"- run dir: `{finetune}` (loss_curve.png, metrics.csv)",
                  f"- held-out items: {acc['n']} from `{qa}` (labels {acc['label_counts']})",
                  f"- accuracy: **{acc['accuracy']:.3f}** (chance {acc['chance']:.3f}, majority class "
                  f"{acc['majority']:.3f}; pretrained model before fine-tuning {base['accuracy']:.3f})",
                  f"- loss curve: `{finetune / 'loss_curve.png'}`"]
    return "\n".join(lines) + "\n", m


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="data_prep out_dir")
    ap.add_argument("--pretrain", type=Path, required=True, help="pretraining run_dir")
    ap.add_argument("--finetune", type=Path, help="fine-tuning run_dir")
    ap.add_argument("--qa", type=Path, help="held-out PubMedQA-layout JSON")
    ap.add_argument("--out", type=Path, help="report.md path (default: <pretrain>/../report.md)")
    a = ap.parse_args(argv)
    text, metrics = build_report(a.data, a.pretrain, a.finetune, a.qa)
    out = a.out or a.pretrain.parent / "report.md"
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, out)
    out.with_suffix(".json").write_text(json.dumps(metrics, indent=2))
    print(text)
    print(f"report: {out}")


if __name__ == "__main__":
    main()
