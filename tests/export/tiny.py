"""Builders for small trained models in train/'s checkpoint format (shared by tests/export and
tests/serve): a byte-level BPE tokenizer made the way data_prep makes it, a data_prep-style folder
(manifest.json + document Parquet with source/license columns), a model trained for a few
optimizer steps in-process, and eval results beside the run."""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch

WORDS = ("the drug aspirin warfarin metformin patients increased risk of bleeding and interaction between is "
         "effect study results showed treatment with insulin glucose kinase inhibitor tumor cells protein "
         "expression receptor clinical trial dose response significant reduced mortality").split()
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(6, 18))]
        out.append(words[0].capitalize() + " " + " ".join(words[1:]) + ".")
    return out


def train_tokenizer(texts: list[str], vocab_size: int = 360):
    """data_prep's recipe: NFC, byte-level with a prefix space, specials first (ids 0..3)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=1, special_tokens=list(SPECIALS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    assert [tok.token_to_id(t) for t in SPECIALS] == [0, 1, 2, 3]
    return tok


def vocab_strings(tok) -> list[str]:
    return [tok.id_to_token(i) if tok.id_to_token(i) in SPECIALS else tok.decode([i], skip_special_tokens=False)
            for i in range(tok.get_vocab_size())]


def write_data_dir(root: Path, texts: list[str], tok) -> Path:
    """manifest.json + documents/part-00000.parquet + tokenizer/, as data_prep lays them out."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root.mkdir(parents=True, exist_ok=True)
    (root / "tokenizer").mkdir(exist_ok=True)
    (root / "tokenizer" / "tokenizer.json").write_text(tok.to_str(pretty=True))
    (root / "documents").mkdir(exist_ok=True)
    n = len(texts)
    split = ["val" if i % 10 == 0 else "train" for i in range(n)]
    source = ["pubmed" if i % 3 else "pmc_oa" for i in range(n)]
    lic = ["NLM" if s == "pubmed" else ("CC BY" if i % 2 else "CC BY-NC") for i, s in enumerate(source)]
    pq.write_table(pa.table({"id": [f"pmid:{1000 + i}" for i in range(n)], "text": texts, "source": source,
                             "license": lic, "split": split}), root / "documents" / "part-00000.parquet")
    tokens = {s: sum(len(tok.encode(t).ids) + 1 for t, sp in zip(texts, split, strict=True) if sp == s)
              for s in ("train", "val")}
    manifest = {
        "format_version": 1, "config_hash": "c0ffee" * 6, "config": {"source": {"name": "local"}},
        "tokenizer": {"path": "tokenizer/tokenizer.json", "sha256": "ab" * 32, "vocab_size": tok.get_vocab_size(),
                      "bos_id": 0, "pad_id": 1, "eos_id": 2, "unk_id": 3},
        "dtype": "uint16",
        "splits": {s: {"documents": split.count(s), "tokens": tokens[s], "shards": []} for s in ("train", "val")},
        "documents": [{"path": "documents/part-00000.parquet", "rows": n, "sha256": "x"}],
        "inputs": [{"path": "in.xml", "order": 0}], "counts": {"records": n + 7, "duplicates": 4, "decontaminated": 3,
                                                              "kept": n},
        "dropped": {"too_short": 2}, "decontaminated_ids": ["pmid:1", "pmid:2", "pmid:3"],
        "decontaminated_by_eval_set": {"pubmedqa": ["pmid:1", "pmid:2"], "bc5cdr": ["pmid:3"]},
        "decontamination": {"loaded": True, "sets": {"pubmedqa": {"pmids": 1000, "text_units": 1000},
                                                     "bc5cdr": {"pmids": 500, "text_units": 1500}}},
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def train_checkpoint(run_dir: Path, data_dir: Path, tok, texts: list[str], config, steps: int = 30,
                     seq_len: int = 48, seed: int = 0) -> Path:
    """Train `config` for `steps` AdamW steps on `texts` and save run_dir/checkpoints/last.ckpt in
    train/'s format (Lightning-style state_dict with model.* keys + biogpt_meta)."""
    from common.checkpoint import atomic_torch_save
    from model import Decoder, chunked_cross_entropy

    torch.manual_seed(seed)
    model = Decoder(config, seed=seed)
    if config.char_stage or config.term_stage:
        model.attach_vocab(vocab_strings(tok))
    stream = [i for t in texts for i in [*tok.encode(t).ids, 2]]
    data = torch.tensor(stream)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(seed)
    model.train()
    batch = 8
    for _ in range(steps):
        starts = torch.randint(0, len(data) - seq_len - 1, (batch,), generator=g)
        x = torch.stack([data[s: s + seq_len] for s in starts])
        y = torch.stack([data[s + 1: s + seq_len + 1] for s in starts])
        loss = chunked_cross_entropy(model(x, return_hidden=True), model.head_weight, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "tokenizer.json").write_text(tok.to_str(pretty=True))
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    train_config = {"task": {"name": "pretrain", "data_dir": str(data_dir), "seq_len": seq_len, "init_from": None},
                    "data": {"batch_size": batch}, "optim": {"lr": 1e-2, "schedule": "constant", "warmup_steps": 0},
                    "trainer": {"max_steps": steps, "precision": "32-true", "devices": 1}}
    atomic_torch_save({
        "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
        "global_step": steps,
        "biogpt_meta": {"model_config": config.to_dict(), "tokens_seen": steps * batch * seq_len, "task": "pretrain",
                        "config": train_config, "tokenizer_path": str(run_dir / "tokenizer.json"),
                        "data_manifest": str(data_dir / "manifest.json")},
    }, ckpt)
    return ckpt


def write_results(folder: Path, source: Path | str, task: str, metrics: dict) -> Path:
    """A results.json as `python -m eval` writes it (flat metrics + `metrics` + `source`)."""
    folder.mkdir(parents=True, exist_ok=True)
    r = {**metrics, "task": task, "mode": "score", "source": str(source), "limit": None, "metrics": metrics,
         "counts": {"windows": 4}}
    (folder / "results.json").write_text(json.dumps(r))
    return folder / "results.json"


def build_run(root: Path, kind: str, steps: int = 30) -> dict:
    """A trained `kind` ('hybrid': tiny preset, RoPE, local + global layers, hybrid embedding;
    'dense': BioGPT's shape) under root/: data/, run/checkpoints/last.ckpt, eval results."""
    from model import ModelConfig

    texts = sentences(300, seed=1)
    tok = train_tokenizer(texts)
    data_dir = write_data_dir(root / "data", texts, tok)
    V = tok.get_vocab_size()
    if kind == "hybrid":
        config = ModelConfig.from_name("tiny", vocab_size=V, max_seq_len=128, window=8, global_every=2)
    else:
        config = ModelConfig(vocab_size=V, n_layer=2, n_head=4, d_model=64, d_ff=256, max_seq_len=128,
                             position="learned", window=None, char_stage=False, term_stage=False)
    ckpt = train_checkpoint(root / "run", data_dir, tok, texts, config, steps=steps)
    ours = write_results(root / "run" / "eval" / "perplexity", ckpt, "perplexity", {"perplexity": 42.5, "loss": 3.75})
    beside = write_results(root / "eval" / "pubmedqa", ckpt, "pubmedqa", {"accuracy": 0.61, "macro_f1": 0.43})
    other = write_results(root / "eval" / "other", root / "elsewhere" / "last.ckpt", "hoc", {"f1": 0.99})
    return {"root": root, "checkpoint": ckpt, "tokenizer": tok, "texts": texts, "config": config,
            "results": [ours, beside], "unrelated_results": other}
