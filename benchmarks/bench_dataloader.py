"""Dataloader throughput vs what training consumes (target: >= 20x on CPU, so data is never the
bottleneck).

    python benchmarks/bench_dataloader.py --data runs/demo/data [--seq-len 128 --batch-size 16 --workers 0]

Reference measured in the same run: tokens/s of training steps of the `tiny` model (forward,
chunked loss, backward, AdamW) on batches of the same shape. The two alternate for --repeats
rounds; the ratio is taken per round and reported with its range (benchmarks/_stats.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _stats import Bench, add_common_args, spread  # noqa: E402


def loader_tokens_per_s(data: str, seq_len: int, batch_size: int, workers: int, seconds: float) -> float:
    from train.data import PretrainDataModule

    dm = PretrainDataModule(data, seq_len, batch_size, seed=0, num_workers=workers)
    dm.setup("fit")
    loader = dm.train_dataloader()
    n_tokens, t0, epoch = 0, time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        dm.train_sampler.set_epoch(epoch)
        epoch += 1
        for batch in loader:
            n_tokens += batch["input_ids"].numel()
            dm.advance(batch["input_ids"].shape[0])
            if time.perf_counter() - t0 >= seconds:
                break
    return n_tokens / (time.perf_counter() - t0)


def train_step_fn(data: str, seq_len: int, batch_size: int):
    """(one training step of `tiny` on a random batch of the given shape, tokens per step)."""
    from model import Decoder, ModelConfig, chunked_cross_entropy
    from train.optim import build_optimizer
    from train.tokenizer_io import decoded_vocab, load_tokenizer, tokenizer_path

    vocab = decoded_vocab(load_tokenizer(tokenizer_path(data)))
    model = Decoder(ModelConfig.from_name("tiny", vocab_size=len(vocab)), seed=0)
    model.attach_vocab(vocab)
    opt = build_optimizer(model, 1e-3, 0.1, (0.9, 0.95), 1e-8, False)
    x = torch.randint(0, len(vocab), (batch_size, seq_len + 1))

    def step() -> None:
        loss = chunked_cross_entropy(model(x[:, :-1], return_hidden=True), model.head_weight, x[:, 1:])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step, batch_size * seq_len


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="runs/demo/data")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=2.0, help="loader time per round")
    ap.add_argument("--steps", type=int, default=5, help="training steps per round")
    add_common_args(ap, repeats=5, warmup=1)
    a = ap.parse_args()
    with Bench("bench_dataloader", a) as b:
        step, tokens = train_step_fn(a.data, a.seq_len, a.batch_size)
        for _ in range(a.warmup):
            step()
        load, train = [], []
        for _ in range(a.repeats):
            load.append(loader_tokens_per_s(a.data, a.seq_len, a.batch_size, a.workers, a.seconds))
            t = time.perf_counter()
            for _ in range(a.steps):
                step()
            train.append(a.steps * tokens / (time.perf_counter() - t))
        print(f"dataloader: tokens/s {spread(load, '{:,.0f}')} (workers={a.workers})")
        print(f"training (tiny, CPU, {torch.get_num_threads()} threads): tokens/s {spread(train, '{:,.0f}')}")
        b.record("loader_tokens_per_s", load)
        b.record("train_tokens_per_s", train)
        b.ratio("dataloader / training, tokens/s", [lo / tr for lo, tr in zip(load, train, strict=True)], goal=20.0)


if __name__ == "__main__":
    main()
