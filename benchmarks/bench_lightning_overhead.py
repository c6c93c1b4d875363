"""Lightning overhead: training tokens/s through `python -m train`'s full path (Lightning module,
callbacks, metrics.csv, checkpoint-position tracking) vs a plain PyTorch loop with the same model,
data, optimizer, schedule and clipping (target: >= 0.95x).

    python benchmarks/bench_lightning_overhead.py --data runs/demo/data [--steps 30 --repeats 2]

Both are timed step by step over the same steps (the first `--skip` excluded): the plain loop
around each iteration (data fetch included), Lightning from the wall-clock column of metrics.csv
(everything between two steps included: hooks, logging, CSV writes, the data position). The
median step time is compared, because on a shared machine single steps vary 5x with the load of
other processes; runs alternate and the best median of `--repeats` is kept for each.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout


def plain_loop(data: str, seq_len: int, batch_size: int, steps: int, skip: int) -> float:
    from model import Decoder, ModelConfig, chunked_cross_entropy
    from train.data import PretrainDataModule
    from train.optim import build_optimizer, schedule_fn
    from train.tokenizer_io import decoded_vocab, load_tokenizer, tokenizer_path

    torch.manual_seed(0)
    vocab = decoded_vocab(load_tokenizer(tokenizer_path(data)))
    model = Decoder(ModelConfig.from_name("tiny", vocab_size=len(vocab)), seed=0)
    model.attach_vocab(vocab)
    model.train()
    opt = build_optimizer(model, 3e-3, 0.05, (0.9, 0.95), 1e-8, False)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule_fn(10, steps, "cosine", 0.1))
    dm = PretrainDataModule(data, seq_len, batch_size, seed=0)
    dm.setup("fit")
    it = iter(dm.train_dataloader())
    times = []
    t_prev = time.perf_counter()
    for _ in range(steps):
        batch = next(it)
        loss = chunked_cross_entropy(model(batch["input_ids"], return_hidden=True), model.head_weight, batch["labels"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sched.step()
        t = time.perf_counter()
        times.append(t - t_prev)
        t_prev = t
    return batch_size * seq_len / statistics.median(times[skip:])


def lightning_run(data: str, seq_len: int, batch_size: int, steps: int, skip: int) -> float:
    from hydra import compose, initialize_config_dir

    from train.run import run

    conf = Path(__file__).resolve().parents[1] / "conf"
    with tempfile.TemporaryDirectory() as tmp:
        with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
            cfg = compose("train", overrides=[
                "experiment=demo", f"run_dir={tmp}", f"task.data_dir={data}", f"task.seq_len={seq_len}",
                f"data.batch_size={batch_size}", f"trainer.max_steps={steps}", "trainer.progress_bar=false",
                f"trainer.val_check_interval={steps * 10}", f"trainer.checkpoint_every_n_steps={steps * 10}",
                "optim.warmup_steps=10", "trainer.save_top_k=0"])
        run(cfg)
        with open(Path(tmp) / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
    # metrics.csv `time` is wall-clock at the end of each step: intervals of steps skip+1 .. steps.
    t = {int(r["step"]): float(r["time"]) for r in rows}
    return batch_size * seq_len / statistics.median(t[i] - t[i - 1] for i in range(skip + 1, steps + 1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="runs/demo/data")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--skip", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    best_plain, best_light = 0.0, 0.0
    for r in range(a.repeats):
        p = plain_loop(a.data, a.seq_len, a.batch_size, a.steps, a.skip)
        lt = lightning_run(a.data, a.seq_len, a.batch_size, a.steps, a.skip)
        print(f"repeat {r}: plain {p:,.0f} tokens/s, lightning {lt:,.0f} tokens/s")
        best_plain, best_light = max(best_plain, p), max(best_light, lt)
    ratio = best_light / best_plain if best_plain else math.nan
    print(f"plain PyTorch loop: {best_plain:,.0f} tokens/s")
    print(f"Lightning (python -m train path): {best_light:,.0f} tokens/s")
    print(f"ratio Lightning / plain: {ratio:.3f} (target >= 0.95)")


if __name__ == "__main__":
    main()
