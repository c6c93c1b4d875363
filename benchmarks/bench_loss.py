"""Training-path loss against BioGptForCausalLM(labels=...): time and peak memory (CPU).

(1) the whole step (forward + backward) of the same model: HF computing its own loss from full
logits vs our decoder returning hidden states + model.loss.chunked_cross_entropy;
(2) the LM head + loss alone on the same hidden states: full logits + F.cross_entropy vs chunked.
Each case runs in a fresh process; memory is the peak RSS growth over the set-up state. The four
cases run --repeats times, one fresh process per case per round (rounds interleave the cases); a
ratio is taken per round and reported with its range (benchmarks/_stats.py).

    .venv/bin/python benchmarks/bench_loss.py [--repeats 3 --steps 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from _model_bench import emit, peak_rss_mb, rss_mb, run_child  # noqa: E402
from _stats import Bench, add_common_args, median, rate_ratios, spread, step_times  # noqa: E402

VOCAB = 42384
CASES = ("hf_labels", "ours_chunked", "head_full", "head_chunked")


def child(case: str, args) -> None:
    from model import chunked_cross_entropy

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randint(4, VOCAB, (args.batch, args.seq_len), generator=torch.Generator().manual_seed(0))
    if case.startswith("head"):
        h = torch.randn(args.batch, args.seq_len, args.d_model, requires_grad=True)
        w = (torch.randn(VOCAB, args.d_model) * 0.02).requires_grad_()
        if case == "head_full":
            def step():
                F.cross_entropy((h @ w.t()).view(-1, VOCAB), x.view(-1)).backward()
        else:
            def step():
                chunked_cross_entropy(h, w, x, chunk=args.chunk).backward()
    else:
        from transformers import BioGptConfig, BioGptForCausalLM

        from model.convert_hf import from_hf_biogpt

        hf = BioGptForCausalLM(BioGptConfig(vocab_size=VOCAB, hidden_size=args.d_model, num_hidden_layers=args.layers,
                                            num_attention_heads=args.heads, intermediate_size=4 * args.d_model,
                                            max_position_embeddings=args.seq_len, hidden_dropout_prob=0.0,
                                            attention_probs_dropout_prob=0.0))
        if case == "hf_labels":
            def step():
                hf(x, labels=x).loss.backward()
        else:
            ours = from_hf_biogpt(hf, dropout=0.0, attn_dropout=0.0)
            del hf

            def step():  # same math as labels=x: predict x[t+1] from x[..t]
                h = ours(x[:, :-1], return_hidden=True)
                chunked_cross_entropy(h, ours.head_weight, x[:, 1:], chunk=args.chunk).backward()
    base = rss_mb()
    sec = median(step_times(step, args.warmup, args.steps))
    emit({"case": case, "sec": sec, "peak_mb": peak_rss_mb() - base})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--d-model", type=int, default=512)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=1024)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--chunk", type=int, default=1024)
    p.add_argument("--steps", type=int, default=2, help="timed steps per process (median)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    add_common_args(p, repeats=3, warmup=1)  # --warmup: untimed steps in each process
    args = p.parse_args()
    if args.child:
        return child(args.child, args)
    with Bench("bench_loss", args) as b:
        child_args = sys.argv[1:]  # the child parses the same options (and ignores --json, --repeats)
        res: dict[str, list[dict]] = {c: [] for c in CASES}
        for r in range(args.repeats):
            for c in CASES[r % len(CASES):] + CASES[: r % len(CASES)]:
                res[c].append(run_child(__file__, [c, *child_args]))
        print(f"loss path, B={args.batch} T={args.seq_len} d={args.d_model} vocab {VOCAB}, chunk {args.chunk}, "
              f"{args.threads} threads (peak = RSS growth during the timed steps), {args.repeats} processes per case")
        sec = {c: [x["sec"] for x in v] for c, v in res.items()}
        mem = {c: [x["peak_mb"] for x in v] for c, v in res.items()}
        for c in CASES:
            print(f"  {c:13s} s {spread(sec[c])}  peak +MB {spread(mem[c], '{:.0f}')}")
        b.record("seconds", sec)
        b.record("peak_mb", mem)
        for ours, ref in (("ours_chunked", "hf_labels"), ("head_chunked", "head_full")):
            b.ratio(f"{ours} / {ref}, speed", rate_ratios(sec[ours], sec[ref]))
            b.ratio(f"{ours} / {ref}, peak memory", [o / max(f, 1.0) for o, f in zip(mem[ours], mem[ref], strict=True)],
                    higher_is_better=False)


if __name__ == "__main__":
    main()
