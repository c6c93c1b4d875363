"""Dataloader throughput vs what training consumes (target: >= 20x on CPU, so data is never the
bottleneck).

    python benchmarks/bench_dataloader.py --data runs/demo/data [--seq-len 128 --batch-size 16 --workers 0]

Reference measured in the same run: tokens/s of training steps of the `tiny` model (forward,
chunked loss, backward, AdamW) on batches of the same shape.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout


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


def train_tokens_per_s(data: str, seq_len: int, batch_size: int, steps: int) -> float:
    from model import Decoder, ModelConfig, chunked_cross_entropy
    from train.optim import build_optimizer
    from train.tokenizer_io import decoded_vocab, load_tokenizer, tokenizer_path

    vocab = decoded_vocab(load_tokenizer(tokenizer_path(data)))
    model = Decoder(ModelConfig.from_name("tiny", vocab_size=len(vocab)), seed=0)
    model.attach_vocab(vocab)
    opt = build_optimizer(model, 1e-3, 0.1, (0.9, 0.95), 1e-8, False)
    x = torch.randint(0, len(vocab), (batch_size, seq_len + 1))
    for i in range(steps + 1):
        if i == 1:
            t0 = time.perf_counter()
        loss = chunked_cross_entropy(model(x[:, :-1], return_hidden=True), model.head_weight, x[:, 1:])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return steps * batch_size * seq_len / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="runs/demo/data")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--steps", type=int, default=5)
    a = ap.parse_args()
    load = loader_tokens_per_s(a.data, a.seq_len, a.batch_size, a.workers, a.seconds)
    train = train_tokens_per_s(a.data, a.seq_len, a.batch_size, a.steps)
    print(f"dataloader: {load:,.0f} tokens/s (workers={a.workers})")
    print(f"training (tiny, CPU, {torch.get_num_threads()} threads): {train:,.0f} tokens/s")
    print(f"ratio dataloader / training: {load / train:.1f}x (target >= 20x)")


if __name__ == "__main__":
    main()
