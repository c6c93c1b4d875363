"""Fine-tuning data: BioGPT's source/target formats, tokenized once with `datasets.map`.

Each task's raw JSON (BioGPT's `data/<task>/raw/*.json`, PubMedQA's `pqal_*.json`) is a dict keyed
by document id. `load_examples` turns it into (id, source, target) records in BioGPT's wording;
`tokenize_dataset` turns those into `input_ids` + `labels` where only target tokens (and the final
EOS) carry a label; source tokens get -100 so the loss ignores them. The datamodule only pads.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .data import ResumableDataModule

IGNORE_INDEX = -100
PUBMEDQA_TEMPLATE = "the answer to the question given the context is {}."
PUBMEDQA_LABELS = ("yes", "no", "maybe")


class DataFormatError(ValueError):
    """A fine-tuning file does not have the layout its task expects."""


def _field(item: dict, key: str, path: Path, doc_id: str):
    if key not in item:
        raise DataFormatError(f"{path}: item {doc_id!r} has no '{key}' field (keys: {', '.join(item)})")
    return item[key]


def _listish(value, key: str, path: Path, doc_id: str) -> list:
    """BioGPT's raw files store relation lists as Python reprs ("[{'chemical': ...}]")."""
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)  # literals only: never executes code
        except (ValueError, SyntaxError) as e:
            raise DataFormatError(f"{path}: item {doc_id!r} field '{key}' is not a list literal ({e})") from None
    if isinstance(value, dict):
        return [value]
    if not isinstance(value, list):
        raise DataFormatError(f"{path}: item {doc_id!r} field '{key}' must be a list")
    return value


def _join_relations(parts: list[str]) -> str:
    return "; ".join(parts) + "." if parts else "there is no relation."


def pubmedqa_record(doc_id: str, item: dict, path: Path) -> dict:
    q = _field(item, "QUESTION", path, doc_id).strip()
    ctx = _field(item, "CONTEXTS", path, doc_id)
    ctx = " ".join(c.strip() for c in ctx) if isinstance(ctx, list) else str(ctx).strip()
    label = str(_field(item, "final_decision", path, doc_id)).strip().lower()
    if label not in PUBMEDQA_LABELS:
        raise DataFormatError(f"{path}: item {doc_id!r} final_decision={label!r}, expected yes/no/maybe")
    return {"id": doc_id, "source": f"question: {q} context: {ctx}", "target": PUBMEDQA_TEMPLATE.format(label),
            "label": label}


def bc5cdr_record(doc_id: str, item: dict, path: Path) -> dict:
    text = f"{item.get('title', '').strip()} {_field(item, 'abstract', path, doc_id).strip()}".strip()
    # Relations name MeSH ids; BioGPT writes them with a mention of that id (the last one listed).
    id2chem = {v: k for k, v in _listish(item.get("chemical2id", {}), "chemical2id", path, doc_id)[0].items()} \
        if item.get("chemical2id") else {}
    id2dis = {v: k for k, v in _listish(item.get("disease2id", {}), "disease2id", path, doc_id)[0].items()} \
        if item.get("disease2id") else {}
    parts = []
    for r in _listish(_field(item, "relations", path, doc_id), "relations", path, doc_id):
        chem, dis = id2chem.get(r["chemical"], r["chemical"]), id2dis.get(r["disease"], r["disease"])
        parts.append(f"the relation between {chem} and {dis} exists")
    return {"id": doc_id, "source": text, "target": _join_relations(parts), "label": ""}


def _interaction_record(doc_id: str, item: dict, path: Path) -> dict:
    text = f"{item.get('title', '').strip()} {_field(item, 'abstract', path, doc_id).strip()}".strip()
    parts = [f"the interaction between {t['drug']} and {t['target']} is {t['interaction']}"
             for t in _listish(_field(item, "triples", path, doc_id), "triples", path, doc_id)]
    return {"id": doc_id, "source": text, "target": _join_relations(parts), "label": ""}


FORMATS: dict[str, Callable[[str, dict, Path], dict]] = {
    "pubmedqa": pubmedqa_record,
    "bc5cdr": bc5cdr_record,
    "ddi": _interaction_record,
    "kd_dti": _interaction_record,
}


def load_examples(task: str, path: str | Path):
    """(id, source, target, label) records of one raw JSON file, as a `datasets.Dataset`."""
    import datasets

    path = Path(path)
    if task not in FORMATS:
        raise DataFormatError(f"no fine-tuning format for task {task!r}; known: {', '.join(FORMATS)}")
    if not path.is_file():
        raise DataFormatError(f"{path}: fine-tuning file not found (task.{task} train/val/test_file)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataFormatError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(raw, dict) or not raw:
        raise DataFormatError(f"{path}: expected a non-empty JSON object keyed by document id")
    records = [FORMATS[task](str(k), v, path) for k, v in raw.items()]
    return datasets.Dataset.from_list(records)


def tokenize_dataset(ds, tokenizer, max_len: int, eos_id: int, num_proc: int | None = None):
    """Add `input_ids`/`labels` (length <= max_len): source tokens masked, target + EOS supervised.

    When source + target do not fit, the source is cut from its end (the target is what is learnt).
    """

    def encode(batch):
        src = tokenizer.encode_batch(batch["source"], add_special_tokens=False)
        # A leading space: the target's first word is word-initial, as in running text.
        tgt = tokenizer.encode_batch([" " + t for t in batch["target"]], add_special_tokens=False)
        ids_out, labels_out = [], []
        for s, t in zip(src, tgt, strict=True):
            t_ids = t.ids[: max_len]  # seq = source + target + EOS, then shifted by one
            s_ids = s.ids[: max_len - len(t_ids)]
            seq = s_ids + t_ids + [eos_id]
            labels = [IGNORE_INDEX] * len(s_ids) + t_ids + [eos_id]
            ids_out.append(seq[:-1][:max_len])
            labels_out.append(labels[1:][:max_len])
        return {"input_ids": ids_out, "labels": labels_out}

    return ds.map(encode, batched=True, num_proc=num_proc, desc="tokenizing")


class PaddedCollate:
    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        T = max(len(it["input_ids"]) for it in items)
        ids = np.full((len(items), T), self.pad_id, dtype=np.int64)
        labels = np.full((len(items), T), IGNORE_INDEX, dtype=np.int64)
        for i, it in enumerate(items):
            n = len(it["input_ids"])
            ids[i, :n] = it["input_ids"]  # right padding: causal attention never sees it
            labels[i, :n] = it["labels"]
        return {"input_ids": torch.from_numpy(ids), "labels": torch.from_numpy(labels)}


class _Rows(torch.utils.data.Dataset):
    def __init__(self, ds):
        self.ds = ds.with_format(None, columns=["input_ids", "labels"])

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> dict:
        return self.ds[int(i)]


class FinetuneDataModule(ResumableDataModule):
    def __init__(self, task: str, train_file: str, val_file: str | None, tokenizer_path: str | Path,
                 seq_len: int, batch_size: int, seed: int, eos_id: int = 2, pad_id: int = 1,
                 num_workers: int = 0, val_batches: int = 8, pin_memory: bool = False):
        super().__init__(batch_size, seed, num_workers, val_batches, pin_memory)
        self.task, self.train_file, self.val_file = task, train_file, val_file
        self.tokenizer_path = Path(tokenizer_path)
        self.seq_len, self.eos_id, self.pad_id = seq_len, eos_id, pad_id
        self.collate = PaddedCollate(pad_id)

    def setup(self, stage: str | None = None) -> None:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(self.tokenizer_path))
        self.train_ds = _Rows(tokenize_dataset(load_examples(self.task, self.train_file), tok, self.seq_len,
                                               self.eos_id))
        val_file = self.val_file or self.train_file
        self.val_ds = _Rows(tokenize_dataset(load_examples(self.task, val_file), tok, self.seq_len, self.eos_id))
