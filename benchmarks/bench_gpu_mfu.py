"""Training throughput and MFU: `biogpt` preset at T=2048, bf16 autocast, torch.compile, AdamW.

MFU = tokens/s * FLOPs per token / the card's dense bf16 peak (model.flops.PEAK_BF16_FLOPS), with
FLOPs per token = 6 * N_non-embedding + 6 * d * V (LM-head matmul) + the attention term over the
attended window only (model.flops.flops_per_token). The MFU without the head term (the issue's
6*N_non-embedding convention) is printed too. Runs on CPU with the tiny preset as a smoke test:

    .venv/bin/python benchmarks/bench_gpu_mfu.py                      # GPU: biogpt, T=2048
    .venv/bin/python benchmarks/bench_gpu_mfu.py --preset tiny --seq-len 256 --batch 2 --steps 3   # CPU
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from model import Decoder, ModelConfig, chunked_cross_entropy  # noqa: E402
from model.flops import PEAK_BF16_FLOPS, count_params, flops_per_token, mfu  # noqa: E402


def peak_for(device: torch.device) -> tuple[str, float | None]:
    if device.type != "cuda":
        return "CPU", None
    name = torch.cuda.get_device_name(device)
    for key, peak in PEAK_BF16_FLOPS.items():
        if key.replace(" ", "").lower() in name.replace(" ", "").lower():
            return name, peak
    return name, None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="biogpt")
    p.add_argument("--seq-len", type=int, default=2048)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--hybrid", action=argparse.BooleanOptionalAction, default=True, help="hybrid stages 2+3")
    p.add_argument("--backend", default="auto")
    args = p.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    # RoPE so T=2048 fits (the preset's learned table stops at 1,024 positions).
    config = ModelConfig.from_name(args.preset, position="rope", max_seq_len=max(args.seq_len, 1),
                                   dropout=0.0, attn_dropout=0.0, attn_backend=args.backend,
                                   char_stage=args.hybrid, term_stage=args.hybrid)
    model = Decoder(config, seed=0).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    hidden = torch.compile(model) if not args.no_compile else model
    x = torch.randint(0, config.vocab_size, (args.batch, args.seq_len + 1), device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16)

    def step():
        with autocast:
            h = hidden(x[:, :-1], return_hidden=True)
            loss = chunked_cross_entropy(h, model.head_weight, x[:, 1:])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(args.warmup):
        step()
    sync()
    t = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync()
    sec = (time.perf_counter() - t) / args.steps
    tok_s = args.batch * args.seq_len / sec
    tokens = args.batch * args.seq_len
    f_tok = flops_per_token(config, args.seq_len, tokens_per_step=tokens)
    f_tok_nohead = flops_per_token(config, args.seq_len, include_head=False, tokens_per_step=tokens)
    name, peak = peak_for(device)
    n = count_params(config)
    print(f"{args.preset} ({n['total'] / 1e6:.0f}M params, {n['non_embedding'] / 1e6:.0f}M non-embedding), "
          f"T={args.seq_len}, batch {args.batch}, bf16, compile={not args.no_compile}, hybrid={args.hybrid}, "
          f"pattern {config.pattern.count('local')} local / {config.pattern.count('global')} global, W={config.window}")
    print(f"device: {name}; {sec:.3f} s/step, {tok_s:,.0f} tokens/s, {f_tok / 1e9:.3g} GFLOP/token")
    if peak is None:
        print("MFU: n/a (no dense bf16 peak known for this device; the table covers H100/H200/A100/RTX 4090)")
    else:
        print(f"MFU vs {peak / 1e12:.0f} TFLOPS: {100 * mfu(tok_s, f_tok, peak):.1f}% "
              f"(without the LM-head term: {100 * mfu(tok_s, f_tok_nohead, peak):.1f}%)")
        print(f"peak memory: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()
