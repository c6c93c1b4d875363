"""Training throughput and MFU of one preset: bf16 autocast, chunked loss, AdamW, optionally compiled
the way training compiles (`block.compile()` per decoder block, as train/module.py does).

MFU = tokens/s x model.flops.flops_per_token(config, T, batch) / model.flops.peak_bf16_flops(device):
the same count the `train/mfu` metric uses (6 x block weights, the LM head once, attention over the
attended window only, the character stage once per micro-batch). The MFU without the LM-head term is
printed too. Dropout is off (FlexAttention has no attention dropout). Each step is timed on its own
(synchronised), so the spread over steps is printed beside the median. `benchmarks/gpu_check.py`
calls `measure()` for every attention backend, compiled and not.

    .venv/bin/python benchmarks/bench_gpu_mfu.py                            # GPU: biogpt, T=2048, batch 8
    .venv/bin/python benchmarks/bench_gpu_mfu.py --backend flex --compile
    .venv/bin/python benchmarks/bench_gpu_mfu.py --preset tiny --seq-len 256 --batch 2 --steps 5   # CPU smoke run
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from _stats import Bench, add_common_args, median, spread, step_times  # noqa: E402

from model import Decoder, ModelConfig, chunked_cross_entropy  # noqa: E402
from model.attention import resolve_backend  # noqa: E402
from model.flops import count_params, flops_per_token, mfu, peak_bf16_flops  # noqa: E402


def bench_config(preset: str, seq_len: int, backend: str, hybrid: bool = True) -> ModelConfig:
    """The preset as it is, with the position table raised to seq_len if needed and dropout off."""
    base = ModelConfig.from_name(preset)
    return base.replace(max_seq_len=max(base.max_seq_len, seq_len), dropout=0.0, attn_dropout=0.0,
                        attn_backend=backend, char_stage=hybrid and base.char_stage,
                        term_stage=hybrid and base.term_stage, char_output=hybrid and base.char_output)


def measure(preset: str = "biogpt", seq_len: int = 2048, batch: int = 8, steps: int = 10, warmup: int = 3,
            backend: str = "auto", compile: bool = False, hybrid: bool = True, device: str | None = None) -> dict[str, Any]:
    """Run `warmup + steps` training steps; return per-step seconds, tokens/s, MFU and memory."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    config = bench_config(preset, seq_len, backend, hybrid)
    model = Decoder(config, seed=0).to(dev)
    model.train()
    if compile:
        for block in model.blocks:  # what train/module.py does with trainer.compile=true
            block.compile()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=dev.type == "cuda")
    x = torch.randint(4, config.vocab_size, (batch, seq_len + 1), device=dev)

    def step() -> None:
        with torch.autocast(dev.type, dtype=torch.bfloat16):
            h = model(x[:, :-1], return_hidden=True)  # (B, T, C)
            loss = chunked_cross_entropy(h, model.head_weight, x[:, 1:])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    secs = step_times(step, warmup, steps, sync)
    tokens = batch * seq_len
    f_tok = flops_per_token(config, seq_len, batch_size=batch)
    f_tok_nohead = flops_per_token(config, seq_len, batch_size=batch, include_head=False)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    peak = peak_bf16_flops(name) if dev.type == "cuda" else None
    tok_s = tokens / median(secs)
    kinds = {"local": resolve_backend(backend, True, seq_len, config.window, dev, torch.bfloat16),
             "global": resolve_backend(backend, False, seq_len, config.window, dev, torch.bfloat16)}
    n = count_params(config)
    return {
        "preset": preset, "seq_len": seq_len, "batch": batch, "backend": backend, "resolved_backends": kinds,
        "compile": compile, "hybrid": hybrid, "device": name, "params": n["total"],
        "step_s": secs, "tokens_per_s": tok_s, "tokens_per_s_range": [tokens / max(secs), tokens / min(secs)],
        "flops_per_token": f_tok, "peak_flops": peak,
        "mfu": mfu(tok_s, f_tok, peak) if peak else None,
        "mfu_no_head": mfu(tok_s, f_tok_nohead, peak) if peak else None,
        "peak_mem_gib": torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else None,
        "pattern": {"local": config.pattern.count("local"), "global": config.pattern.count("global"),
                    "window": config.window},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="biogpt")
    p.add_argument("--seq-len", type=int, default=2048)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=20, help="timed steps")
    p.add_argument("--compile", action="store_true", help="block.compile() every block, as training does")
    p.add_argument("--hybrid", action=argparse.BooleanOptionalAction, default=True, help="hybrid stages 2+3")
    p.add_argument("--backend", default="auto", help="auto | sdpa | blocked | flex | flash | naive")
    add_common_args(p, repeats=None, warmup=5)
    args = p.parse_args()
    with Bench("bench_gpu_mfu", args) as b:
        r = measure(args.preset, args.seq_len, args.batch, args.steps, args.warmup, args.backend, args.compile,
                    args.hybrid)
        b.record("result", r)
        pat = r["pattern"]
        print(f"{args.preset} ({r['params'] / 1e6:.0f}M params), T={args.seq_len}, batch {args.batch}, bf16, "
              f"compile={args.compile}, hybrid={args.hybrid}, backend {args.backend} -> {r['resolved_backends']}, "
              f"{pat['local']} local (W={pat['window']}) / {pat['global']} global layers")
        print(f"device: {r['device']}; s/step {spread(r['step_s'])}; {r['tokens_per_s']:,.0f} tokens/s "
              f"(steps range {r['tokens_per_s_range'][0]:,.0f}-{r['tokens_per_s_range'][1]:,.0f}); "
              f"{r['flops_per_token'] / 1e9:.3g} GFLOP/token")
        if r["mfu"] is None:
            print("MFU: n/a (no dense bf16 peak known for this device; see model.flops.PEAK_BF16_FLOPS)")
        else:
            print(f"MFU vs {r['peak_flops'] / 1e12:.0f} TFLOPS: {100 * r['mfu']:.1f}% "
                  f"(without the LM-head term: {100 * r['mfu_no_head']:.1f}%); peak memory {r['peak_mem_gib']:.1f} GiB")


if __name__ == "__main__":
    main()
