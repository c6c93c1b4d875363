"""Fixtures for training tests: a small token-shard set written by data_prep's own writer, a
composed-and-shrunk training config, and a PubMedQA-layout JSON file."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tasks.pubmedqa import LABELS

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"

WORDS = ("cells protein gene expression tumor patients treatment study results significant increase "
         "decrease receptor kinase inhibitor therapy clinical trial mice dose response analysis").split()


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 16))) + "."


def write_token_data(out_dir: Path, n_docs: int = 120, vocab_size: int = 320, seed: int = 0) -> Path:
    """A data_prep-layout folder (manifest.json, tokenizer/, shards/) built with data_prep's tokenizer
    trainer and ShardWriter, so the test data follows the contract the real pipeline writes."""
    from data_prep.tokens.shards import ShardWriter, dtype_name, token_dtype
    from data_prep.tokens.tokenizer import EOS_ID, save_tokenizer, tokenizer_info, train_bpe

    rng = random.Random(seed)
    docs = [" ".join(_sentence(rng) for _ in range(rng.randint(2, 6))) for _ in range(n_docs)]
    tok = train_bpe(docs, vocab_size=vocab_size, min_frequency=1)
    sha = save_tokenizer(tok, out_dir / "tokenizer" / "tokenizer.json")
    V = tok.get_vocab_size()
    splits = {}
    for split, part in (("train", docs[: int(n_docs * 0.85)]), ("val", docs[int(n_docs * 0.85):])):
        w = ShardWriter(out_dir / "shards", split, V, EOS_ID, max_tokens=2000, rel_to=out_dir)
        for d in part:
            w.add(tok.encode(d).ids)
        shards = [s.to_dict() for s in w.close()]
        splits[split] = {"tokens": sum(s["tokens"] for s in shards), "documents": len(part), "shards": shards}
    manifest = {"format_version": 1, "config_hash": "test", "tokenizer": tokenizer_info(tok, sha),
                "dtype": dtype_name(token_dtype(V)), "splits": splits}
    (out_dir / "manifest.json").write_text(json.dumps(manifest))
    return out_dir


NEW_WORDS = ("vaccine mrna antibody variant spike booster omicron neutralizing cohort efficacy "
             "hospitalization immunity").split()


def append_text_generation(data_dir: Path, n_docs: int, retire: dict[str, list[int]], seed: int = 1) -> dict:
    """Add a generation to a corpus written by `write_token_data`, in the format `python -m data_prep
    ... append=true` writes (tests/data_prep/tokens/generations.py): `n_docs` new documents about
    other topics, tokenized with the corpus' tokenizer and split 85/15, retiring `retire[split]`."""
    from tests.data_prep.tokens.generations import append_generation
    from train.tokenizer_io import load_tokenizer

    tok = load_tokenizer(data_dir / "tokenizer" / "tokenizer.json")
    rng = random.Random(seed)
    words = WORDS + NEW_WORDS * 3
    texts = [" ".join(" ".join(rng.choice(words) for _ in range(rng.randint(6, 16))) + "."
                      for _ in range(rng.randint(2, 6))) for _ in range(n_docs)]
    ids = [tok.encode(t).ids for t in texts]
    cut = int(n_docs * 0.85)
    return append_generation(data_dir, {"train": ids[:cut], "val": ids[cut:]}, retire)


def write_pubmedqa(path: Path, n: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    items = {}
    for i in range(n):
        label = rng.choice(LABELS)
        items[str(10_000 + i)] = {"QUESTION": f"Does {rng.choice(WORDS)} change {rng.choice(WORDS)}?",
                                  "CONTEXTS": [_sentence(rng), f"The result was {label}."],
                                  "LABELS": ["BACKGROUND", "RESULTS"], "final_decision": label,
                                  "LONG_ANSWER": _sentence(rng)}
    path.write_text(json.dumps(items))
    return path


@pytest.fixture(scope="session")
def token_data(tmp_path_factory) -> Path:
    return write_token_data(tmp_path_factory.mktemp("tokdata"))


def compose(overrides: list[str]):
    from hydra import compose as hcompose
    from hydra import initialize_config_dir

    import train.config  # noqa: F401  registers the schema conf/train.yaml composes on

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return hcompose(config_name="train", overrides=overrides, return_hydra_config=False)


def tiny_overrides(data_dir: Path, run_dir: Path, steps: int = 8, extra: tuple[str, ...] = ()) -> list[str]:
    """A CPU run that takes seconds: tiny model, 32-token windows, validation and checkpoints on."""
    return [f"run_dir={run_dir}", f"task.data_dir={data_dir}", "task.seq_len=32", "task.vocab_size_from_tokenizer=true",
            "model=tiny", "logger=csv", "data.batch_size=4", "data.val_batches=2", f"trainer.max_steps={steps}",
            "trainer.val_check_interval=3", "trainer.checkpoint_every_n_steps=2", "trainer.progress_bar=false",
            "optim.warmup_steps=2", "optim.lr=1e-2", *extra]


def read_losses(run_dir: Path) -> dict[int, float]:
    import csv

    with open(run_dir / "metrics.csv", newline="") as f:
        return {int(r["step"]): float(r["loss"]) for r in csv.DictReader(f)}
