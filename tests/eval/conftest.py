"""A tiny random model saved as a real train/ checkpoint, its tokenizer and a data_prep-style folder.

Everything is built by code: a byte-level BPE trained on synthetic text, val shards written with
data_prep's ShardWriter, a manifest whose training documents include one PubMedQA test PMID
(12377809) for the contamination guard, and a checkpoint in train/'s format (Lightning-style
`state_dict` with `model.*` keys + `biogpt_meta`) that `common.checkpoint.load_model` reads.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

WORDS = ("the", "drug", "aspirin", "warfarin", "patients", "increased", "risk", "of", "bleeding", "and",
         "interaction", "between", "is", "effect", "answer", "question", "context", "yes", "no", "maybe",
         "relation", "exists", "cocaine", "infarction", "study", "results", "showed", "treatment", "with")


def synthetic_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 40))) + "." for _ in range(n)]


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict:
    from data_prep.tokens.shards import ShardWriter
    from data_prep.tokens.tokenizer import save_tokenizer, tokenizer_info, train_bpe

    root = tmp_path_factory.mktemp("tiny_data")
    texts = synthetic_texts(400)
    tok = train_bpe(texts, vocab_size=400, min_frequency=2)
    sha = save_tokenizer(tok, root / "tokenizer" / "tokenizer.json")
    writer = ShardWriter(root / "shards", "val", tok.get_vocab_size(), 2, max_tokens=2000, rel_to=root)
    for t in texts[:60]:
        writer.add(np.array(tok.encode(t).ids, dtype=np.int64))
    shards = [s.to_dict() for s in writer.close()]
    (root / "documents").mkdir()
    pq.write_table(pa.table({"id": ["pmid:12377809", "pmid:1", "pmcid:PMC9"], "pmid": ["12377809", "1", "26163474"],
                             "split": ["train", "train", "val"]}), root / "documents" / "part-00000.parquet")
    manifest = {
        "format_version": 1, "tokenizer": tokenizer_info(tok, sha), "dtype": "uint16",
        "splits": {"val": {"tokens": sum(s["tokens"] for s in shards), "documents": sum(s["documents"] for s in shards),
                           "shards": shards}},
        "documents": [{"path": "documents/part-00000.parquet", "rows": 3}], "decontaminated_ids": [],
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return {"dir": root, "manifest": root / "manifest.json", "tokenizer": tok}


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_data, tmp_path_factory) -> Path:
    """run/checkpoints/last.ckpt + run/tokenizer.json, as `python -m train` lays them out."""
    from common.checkpoint import atomic_torch_save
    from data_prep.tokens.tokenizer import save_tokenizer, vocab_strings
    from model import Decoder, ModelConfig

    tok = tiny_data["tokenizer"]
    config = ModelConfig.from_name("tiny", vocab_size=tok.get_vocab_size(), max_seq_len=128)
    model = Decoder(config, seed=0)
    model.attach_vocab(vocab_strings(tok))
    run = tmp_path_factory.mktemp("tiny_run")
    save_tokenizer(tok, run / "tokenizer.json")
    ckpt = run / "checkpoints" / "last.ckpt"
    atomic_torch_save({
        "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
        "global_step": 0,
        "biogpt_meta": {"model_config": config.to_dict(), "tokens_seen": 0, "task": "pretrain",
                        "config": {"task": {"name": "pretrain", "data_dir": str(tiny_data["dir"])}}},
    }, ckpt)
    return ckpt
