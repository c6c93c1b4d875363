"""CPU long context: local attention (W=256, every layer local, blocked kernel) against the same
model with full causal attention (SDPA), forward + backward, T = 1,024 ... 16,384.

Time: both models in one process, taking turns step by step (the machine is shared, so load hits
both alike); --repeats timed steps each, one local/global ratio per pair of steps, reported as the
median with its range (benchmarks/_stats.py). Peak memory: one step per model in a fresh process
(RSS growth). The attention kernels alone (one layer, forward + backward) are timed the same way.

    .venv/bin/python benchmarks/bench_long_context.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from _model_bench import emit, peak_rss_mb, rss_mb, run_child  # noqa: E402
from _stats import Bench, add_common_args, median, rate_ratios  # noqa: E402

CASES = ("local", "global")


def build(case: str, args):
    from model import Decoder, ModelConfig

    c = ModelConfig.from_name("tiny", vocab_size=1024, n_layer=args.layers, d_model=args.d_model, n_head=args.heads,
                              d_ff=4 * args.d_model, char_stage=False, term_stage=False,
                              window=args.window if case == "local" else None, global_every=0, attn_backend="auto")
    return Decoder(c, seed=0)


def child_memory(case: str, T: int, args) -> None:
    m = build(case, args)
    x = torch.randint(0, 1024, (1, T))
    base = rss_mb()
    m(x).logsumexp(-1).mean().backward()
    emit({"peak_mb": peak_rss_mb() - base})


def child_time(T: int, args) -> None:
    from model.attention_backends import blocked_local_attention, sdpa_attention

    models = {c: build(c, args) for c in CASES}
    x = torch.randint(0, 1024, (1, T))
    q = torch.randn(1, args.heads, T, args.d_model // args.heads, requires_grad=True)
    kernels = {"local": lambda: blocked_local_attention(q, q, q, args.window), "global": lambda: sdpa_attention(q, q, q, None)}
    step_s: dict[str, list[float]] = {c: [] for c in CASES}
    attn_s: dict[str, list[float]] = {c: [] for c in CASES}
    for i in range(args.warmup + args.repeats):
        for c in CASES if i % 2 == 0 else CASES[::-1]:  # alternate which model goes first
            t = time.perf_counter()
            models[c](x).logsumexp(-1).mean().backward()
            t1 = time.perf_counter()
            kernels[c]().sum().backward()
            if i >= args.warmup:
                step_s[c].append(t1 - t)
                attn_s[c].append(time.perf_counter() - t1)
    emit({c: {"step_s": step_s[c], "attn_s": attn_s[c]} for c in CASES})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lengths", default="1024,2048,4096,8192,16384")
    p.add_argument("--window", type=int, default=256)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--case", default="local", help=argparse.SUPPRESS)
    p.add_argument("--T", type=int, default=0, help=argparse.SUPPRESS)
    add_common_args(p, repeats=5, warmup=1)  # --repeats: timed steps per model and length
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.child == "memory":
        return child_memory(args.case, args.T, args)
    if args.child == "time":
        return child_time(args.T, args)
    with Bench("bench_long_context", args) as b:
        print(f"long context: {args.layers} layers d={args.d_model} {args.heads} heads, batch 1, fwd+bwd, "
              f"local W={args.window} (blocked) vs global (SDPA causal), {args.threads} threads, "
              f"{args.repeats} interleaved steps each")
        print(f"{'T':>6} {'local tok/s':>12} {'global tok/s':>13} {'local MB':>9} {'global MB':>10} "
              f"{'attn local s':>13} {'attn global s':>14}")
        for T in map(int, args.lengths.split(",")):
            r = run_child(__file__, ["time", "--T", str(T), *sys.argv[1:]])
            mem = {c: run_child(__file__, ["memory", "--case", c, "--T", str(T), *sys.argv[1:]])["peak_mb"]
                   for c in CASES}
            lo, gl = r["local"], r["global"]
            print(f"{T:>6} {T / median(lo['step_s']):>12.0f} {T / median(gl['step_s']):>13.0f} "
                  f"{mem['local']:>9.0f} {mem['global']:>10.0f} {median(lo['attn_s']):>13.3f} "
                  f"{median(gl['attn_s']):>14.3f}", flush=True)
            b.record(f"T={T}", {**r, "peak_mb": mem})
            b.ratio(f"  T={T}: local / global, tokens/s", rate_ratios(lo["step_s"], gl["step_s"]))


if __name__ == "__main__":
    main()
