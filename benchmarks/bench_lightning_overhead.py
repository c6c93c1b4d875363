"""Lightning overhead: training tokens/s through `python -m train`'s full path (Lightning module,
callbacks, metrics.csv, checkpoint-position tracking) vs a plain PyTorch loop with the same model,
data, optimizer, schedule and clipping (target: >= 0.95x).

    python benchmarks/bench_lightning_overhead.py --data runs/demo/data [--steps 30 --skip 5 --repeats 5]

Both sides are timed step by step with time.perf_counter over the same steps (the first `--skip`
excluded): the plain loop around each iteration (data fetch included), Lightning between two
successive `on_train_batch_end` calls of a callback added to the Trainer that `train.run.run`
builds (everything between two steps included: data fetch, hooks, logging, CSV rows, the data
position). Each repeat runs both sides once and gives one ratio of their median step times; the
ratio is reported with its range over repeats (benchmarks/_stats.py).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _stats import Bench, add_common_args, spread  # noqa: E402


def plain_loop(data: str, seq_len: int, batch_size: int, steps: int) -> list[float]:
    """Seconds of each iteration of a plain loop doing what LMModule does."""
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
    loader, epoch = dm.train_dataloader(), 0
    it = iter(loader)
    times = []
    t_prev = time.perf_counter()
    for _ in range(steps):
        batch = next(it, None)
        if batch is None:  # a new epoch, as Lightning starts one
            epoch += 1
            dm.train_sampler.set_epoch(epoch)
            it = iter(loader)
            batch = next(it)
        dm.advance(batch["input_ids"].shape[0])
        loss = chunked_cross_entropy(model(batch["input_ids"], return_hidden=True), model.head_weight, batch["labels"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sched.step()
        t = time.perf_counter()
        times.append(t - t_prev)
        t_prev = t
    return times


@contextlib.contextmanager
def extra_callback(callback) -> Iterator[None]:
    """Every lightning.Trainer built inside gets `callback` too (train.run builds its own Trainer)."""
    import lightning as L

    original = L.Trainer.__init__

    def init(self, *args, callbacks=None, **kwargs):
        original(self, *args, callbacks=[*(callbacks or []), callback], **kwargs)

    L.Trainer.__init__ = init
    try:
        yield
    finally:
        L.Trainer.__init__ = original


def lightning_run(data: str, seq_len: int, batch_size: int, steps: int) -> list[float]:
    """Seconds between successive training steps of `train.run.run` (the `python -m train` path)."""
    import lightning as L
    from hydra import compose, initialize_config_dir

    from train.run import run

    class StepClock(L.Callback):
        def __init__(self) -> None:
            self.ends: list[float] = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            if not self.ends:  # the first step is timed from its own start
                self.ends.append(time.perf_counter())

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self.ends.append(time.perf_counter())

    clock = StepClock()
    conf = Path(__file__).resolve().parents[1] / "conf"
    with tempfile.TemporaryDirectory() as tmp:
        with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
            cfg = compose("train", overrides=[
                "experiment=demo", f"run_dir={tmp}", f"task.data_dir={data}", f"task.seq_len={seq_len}",
                f"data.batch_size={batch_size}", f"trainer.max_steps={steps}", "trainer.progress_bar=false",
                f"trainer.val_check_interval={steps * 10}", f"trainer.checkpoint_every_n_steps={steps * 10}",
                "optim.warmup_steps=10", "trainer.save_top_k=0"])
        with extra_callback(clock):
            run(cfg)
    return [b - a for a, b in zip(clock.ends, clock.ends[1:], strict=False)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="runs/demo/data")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--skip", type=int, default=5, help="first steps left out of each side's median")
    add_common_args(ap, repeats=5, warmup=0)
    a = ap.parse_args()
    tokens = a.batch_size * a.seq_len
    with Bench("bench_lightning_overhead", a) as b:
        plain_med, light_med = [], []
        for r in range(a.warmup + a.repeats):
            sides = [("plain", plain_loop), ("lightning", lightning_run)]
            if r % 2:  # alternate which side goes first
                sides.reverse()
            med = {}
            for name, fn in sides:
                times = fn(a.data, a.seq_len, a.batch_size, a.steps)[a.skip:]
                med[name] = statistics.median(times)
            if r < a.warmup:
                continue
            plain_med.append(med["plain"])
            light_med.append(med["lightning"])
            print(f"repeat {r - a.warmup}: median step plain {1e3 * med['plain']:.1f} ms ({tokens / med['plain']:,.0f} "
                  f"tokens/s), lightning {1e3 * med['lightning']:.1f} ms ({tokens / med['lightning']:,.0f} tokens/s)")
        print(f"median step, plain PyTorch loop: {spread([1e3 * x for x in plain_med])} ms")
        print(f"median step, python -m train path: {spread([1e3 * x for x in light_med])} ms")
        b.record("plain_median_step_s", plain_med)
        b.record("lightning_median_step_s", light_med)
        b.ratio("Lightning / plain loop, tokens/s", [p / lt for p, lt in zip(plain_med, light_med, strict=True)],
                goal=0.95)


if __name__ == "__main__":
    main()
