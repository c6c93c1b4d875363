"""CPU training step (forward + backward + AdamW), tokens/s: our decoder converted from a
BioGptForCausalLM against that model itself, loss computed the same way outside both; then the
overhead of the hybrid stages 2+3 on the same shape.

The three models take one step each per round (the order rotating), --repeats rounds (default
5) after --warmup; every ratio is taken per round and reported as the median with its range over
rounds (benchmarks/_stats.py), "unresolved" when that range is wider than the effect. The hybrid
overhead is a few percent of a ~17 s step, usually below what whole steps on a shared 2-core
machine resolve, so it is also measured directly: the embedding module alone (forward + backward +
AdamW on its parameters), hybrid against plain, interleaved over --embed-reps repetitions.

    .venv/bin/python benchmarks/bench_model_cpu.py            # 4 layers, d=512, 8 heads, T=1024, batch 4
    .venv/bin/python benchmarks/bench_model_cpu.py --repeats 7 --threads 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from _stats import Bench, add_common_args, interleaved, median, rate_ratios, spread  # noqa: E402

VOCAB = 42384


def zipf_ids(B: int, T: int) -> torch.Tensor:
    """Token ids with a Zipf (1/rank) distribution like real text, so a batch holds a realistic
    number of distinct tokens (the character stage runs once per distinct token)."""
    probs = 1.0 / torch.arange(1, VOCAB - 3, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    return 4 + torch.multinomial(probs, B * T, replacement=True, generator=g).view(B, T)


def build(case: str, args):
    from transformers import BioGptConfig, BioGptForCausalLM

    from model.convert_hf import from_hf_biogpt

    torch.manual_seed(0)
    hf = BioGptForCausalLM(BioGptConfig(vocab_size=VOCAB, hidden_size=args.d_model, num_hidden_layers=args.layers,
                                        num_attention_heads=args.heads, intermediate_size=4 * args.d_model,
                                        max_position_embeddings=args.seq_len, hidden_dropout_prob=0.0,
                                        attention_probs_dropout_prob=0.0))
    if case == "hf":
        return (lambda x, m=hf: m(x).logits), hf
    hybrid = case == "ours_hybrid"
    ours = from_hf_biogpt(hf, char_stage=hybrid, term_stage=hybrid, dropout=0.0, attn_dropout=0.0)
    if hybrid:  # a realistic vocabulary (word-initial spaces, 3-10 characters) and open gates
        ours.attach_vocab(["<s>", "<pad>", "</s>", "<unk>"] + [(" " if i % 3 == 0 else "") + f"t{i:x}" * (1 + i % 3)
                                                               for i in range(VOCAB - 4)])
        torch.nn.init.normal_(ours.embed.char_gate, std=0.1)
        torch.nn.init.normal_(ours.embed.term_gate, std=0.1)
    del hf
    return ours, ours


def embed_step(module, x: torch.Tensor):
    """Forward + backward + AdamW of the embedding module alone (what stages 2+3 add to a step)."""
    emb = module.embed
    opt = torch.optim.AdamW(emb.parameters(), lr=1e-4)
    ids = x[:, :-1]
    positions = torch.arange(ids.shape[1])[None]
    g = torch.randn(*ids.shape, emb.tok.embedding_dim)  # stands in for the gradient from the layers

    def step():
        emb(ids, positions).backward(g)
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def make_step(case: str, args, x: torch.Tensor):
    fwd, module = build(case, args)
    fwd = torch.compile(fwd) if args.compile else fwd
    opt = torch.optim.AdamW(module.parameters(), lr=1e-4)

    def step():
        logits = fwd(x[:, :-1])  # (B, T, V)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB).float(), x[:, 1:].reshape(-1))  # same loss for both
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step.module = module
    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--d-model", type=int, default=512)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=1024)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--embed-reps", type=int, default=10, help="repetitions of the embedding-alone timing")
    p.add_argument("--compile", action="store_true", help="torch.compile both models (slow to build on CPU)")
    add_common_args(p, repeats=5, warmup=1)  # --repeats: timed steps per model, interleaved
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    with Bench("bench_model_cpu", args) as b:
        x = zipf_ids(args.batch, args.seq_len + 1)
        cases = ("hf", "ours", "ours_hybrid")
        steps = {c: make_step(c, args, x) for c in cases}
        # One step of each model per round, the order rotating, so load from other processes and
        # allocator state hit them alike; a ratio per round.
        times = interleaved(steps, args.repeats, args.warmup)
        tokens = args.batch * args.seq_len
        print(f"train step, B={args.batch} T={args.seq_len} {args.layers} layers d={args.d_model}, vocab {VOCAB}, "
              f"{args.threads} threads, {args.repeats} interleaved steps per model")
        for c in cases:
            print(f"  {c:12s} s/step {spread(times[c])}  {tokens / median(times[c]):8.0f} tok/s   "
                  f"(steps: {', '.join(f'{t:.2f}' for t in times[c])})")
        b.record("step_s", times)
        b.ratio("ours / BioGptForCausalLM, tokens/s", rate_ratios(times["ours"], times["hf"]), goal=1.0)
        b.ratio("hybrid stages 2+3, step time / ours", [h / o for h, o in zip(times["ours_hybrid"], times["ours"],
                                                                               strict=True)],
                goal=1.10, higher_is_better=False)
        emb = {c: embed_step(steps[c].module, x) for c in ("ours", "ours_hybrid")}
        emb_t = interleaved(emb, args.embed_reps, 1)
        print(f"embedding alone (fwd+bwd+AdamW), ms: plain {spread([1e3 * t for t in emb_t['ours']])}, "
              f"hybrid {spread([1e3 * t for t in emb_t['ours_hybrid']])}")
        extra = [h - o for h, o in zip(emb_t["ours_hybrid"], emb_t["ours"], strict=True)]
        print(f"hybrid stages 2+3 cost, measured directly: {1e3 * median(extra):.0f} ms per step "
              f"(range {1e3 * min(extra):.0f}-{1e3 * max(extra):.0f}) = {100 * median(extra) / median(times['ours']):+.1f}% "
              f"of the median `ours` step (goal <= 10%)")
        b.record("embed_s", emb_t)
        b.ratio("hybrid embedding / plain embedding, time", [h / o for h, o in zip(emb_t["ours_hybrid"], emb_t["ours"],
                                                                                    strict=True)],
                higher_is_better=False)


if __name__ == "__main__":
    main()
