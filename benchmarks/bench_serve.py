"""Serving throughput: generated tokens/s through the OpenAI-compatible server (`python -m serve`:
HTTP + the batching engine) with 1 client and with 8 concurrent clients, against sequential
single-request generation (`Decoder.generate`, one prompt at a time, no server).

    .venv/bin/python benchmarks/bench_serve.py [--checkpoint <ckpt or exported folder>]
        [--requests 16 --max-tokens 32 --clients 8 --repeats 3]

Every case generates greedily from the same prompts with the same max_tokens, so all do the same
work (the script checks that the token totals agree). The server is `python -m serve` in its own
process on 127.0.0.1 (a free port); clients are threads of this process, each with its own HTTP
connection, so on a small machine they share the CPUs with the server, as a co-located client
would. Both processes use --threads torch threads (default 1: on a shared machine, two processes of
2 OpenMP threads each stall one another and the numbers mean little). Rounds interleave the cases; a ratio is taken per round and printed only when its spread
allows (benchmarks/_stats.py).

Without --checkpoint, a model with random weights (--d-model/--layers/--heads, the `tiny`
preset's hybrid embedding and local attention) and a byte-level BPE trained on synthetic text are
written to a temp folder in train/'s checkpoint format.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from _stats import Bench, add_common_args, interleaved, rate_ratios, spread  # noqa: E402

WORDS = ("aspirin warfarin metformin insulin glucose kinase inhibitor tumor cells protein expression receptor "
         "patients treatment increased risk bleeding mortality clinical trial dose response significant reduced "
         "the of and with in was were is by for").split()


def synthetic_checkpoint(folder: Path, args) -> Path:
    """A random-weight model + tokenizer in train/'s layout: folder/checkpoints/last.ckpt."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    from common.checkpoint import atomic_torch_save
    from model import Decoder, ModelConfig

    rng = random.Random(0)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 30))) for _ in range(2000)]
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=1000, min_frequency=1, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    config = ModelConfig.from_name("tiny", vocab_size=tok.get_vocab_size(), d_model=args.d_model, n_layer=args.layers,
                                   n_head=args.heads, d_ff=4 * args.d_model, max_seq_len=512, window=64)
    model = Decoder(config, seed=0)
    model.attach_vocab([tok.id_to_token(i) if i < 4 else tok.decode([i]) for i in range(tok.get_vocab_size())])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.json").write_text(tok.to_str())
    ckpt = folder / "checkpoints" / "last.ckpt"
    atomic_torch_save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}, "global_step": 0,
                       "biogpt_meta": {"model_config": config.to_dict(), "tokens_seen": 0, "config": {}}}, ckpt)
    return ckpt


def prompts(n: int) -> list[str]:
    rng = random.Random(1)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 24))).capitalize() for _ in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=None, help="a train/ checkpoint or an exported folder")
    ap.add_argument("--requests", type=int, default=16, help="requests per case per round")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--clients", type=int, default=8, help="concurrent clients of the batched case")
    ap.add_argument("--batch-wait-ms", type=float, default=5.0)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads of the generate baseline and of the "
                    "server (OMP_NUM_THREADS); on a loaded machine 2+ threads per process stall each other")
    add_common_args(ap, repeats=3, warmup=1)
    args = ap.parse_args()

    import httpx

    from export.app import load_any

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp, Bench("bench_serve", args) as bench:
        ckpt = args.checkpoint or synthetic_checkpoint(Path(tmp) / "run", args)
        model, tok, _ = load_any(ckpt)
        device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                              "cpu" if args.device == "auto" else args.device)
        model = model.to(device=device, dtype=torch.bfloat16 if device.type == "cuda" else torch.float32).eval()
        texts = prompts(args.requests)
        ids = [[2] + tok.encode(t, add_special_tokens=False).ids for t in texts]
        if max(map(len, ids)) + args.max_tokens > model.config.max_seq_len:
            raise SystemExit(f"prompts + --max-tokens exceed the model's context ({model.config.max_seq_len})")
        server, url = start_server(ckpt, args)
        print(f"model {ckpt}: {model.num_params():,} parameters on {device} ({args.threads} torch thread(s) per "
              f"process); server {url}; {args.requests} requests x {args.max_tokens} tokens per case", flush=True)
        tokens: dict[str, int] = {}
        name = httpx.get(f"{url}/models", timeout=30).json()["data"][0]["id"]

        def sequential() -> None:
            tokens["sequential"] = sum(len(model.generate([p], args.max_tokens)[0]) for p in ids)

        def served(clients: int):
            def case() -> None:
                counts = [0] * clients
                parts = [texts[i::clients] for i in range(clients)]

                def worker(k: int) -> None:
                    with httpx.Client(base_url=url, timeout=600) as c:
                        for t in parts[k]:
                            r = c.post("/completions", json={"model": name, "prompt": t, "temperature": 0,
                                                             "max_tokens": args.max_tokens})
                            r.raise_for_status()
                            counts[k] += r.json()["usage"]["completion_tokens"]

                threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                tokens[f"server_{clients}"] = sum(counts)
            return case

        cases = {"sequential": sequential, "server_1": served(1), f"server_{args.clients}": served(args.clients)}
        try:
            t0 = time.perf_counter()
            times = interleaved(cases, args.repeats, args.warmup)
            wall = time.perf_counter() - t0
            stats = httpx.get(url.removesuffix("/v1") + "/health", timeout=30).json()["stats"]
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=60)
        if len(set(tokens.values())) != 1:
            print(f"warning: the cases generated different token totals {tokens}; compare the rates, not the "
                  "ratios", flush=True)
        for case, ts in times.items():
            rates = [tokens[case] / t for t in ts]
            print(f"{case}: {spread(rates, '{:,.0f}')} generated tokens/s", flush=True)
            bench.record(f"{case}_tokens_per_s", rates)
        bench.record("tokens_per_case", tokens)
        bench.record("engine", stats)
        bench.ratio("1 client through the server / sequential generate, tokens/s",
                    rate_ratios(times["server_1"], times["sequential"]))
        bench.ratio(f"{args.clients} concurrent clients / sequential generate, tokens/s",
                    rate_ratios(times[f"server_{args.clients}"], times["sequential"]))
        print(f"engine: {stats['batches']} batches, up to {stats['max_batch_rows']} sequences each; {wall:.0f} s in all",
              flush=True)


def start_server(ckpt: Path, args) -> tuple[subprocess.Popen, str]:
    """`python -m serve` on 127.0.0.1:<free port>; returns the process and its base URL."""
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "serve", f"checkpoint={ckpt}", "port=0", "log_level=warning", "max_n=1",
         f"max_batch_size={max(8, args.clients)}", f"max_queue={4 * args.requests}",
         f"batch_wait_ms={args.batch_wait_ms}", f"device={args.device}"],
        stdout=subprocess.PIPE, text=True, cwd=root,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": str(args.threads)})
    line = proc.stdout.readline()
    m = re.search(r"(http://127\.0\.0\.1:\d+/v1)", line)
    if not m:
        proc.kill()
        raise SystemExit(f"python -m serve did not start: {line!r}")
    return proc, m.group(1)


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
