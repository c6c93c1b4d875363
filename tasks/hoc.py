"""Hallmarks of Cancer (BioGPT's DC-HoC): source `{sentence}` -> target
`the type of this document is {label|label...}.`, micro-F1 over the 11 classes.

Files are TSV (`sentence<TAB>labels` per line); ids are the 0-based positions of the non-blank
lines (BioGPT's sample order). ../shared holds only the test split.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tasks.base import DataFileError, Example, Score, Task, TestSet, align, require_file
from tasks.metrics import multilabel_micro_f1
from tasks.text import FAILED, answer_after

CLASSES = (
    "tumor promoting inflammation", "inducing angiogenesis", "evading growth suppressors",
    "resisting cell death", "cellular energetics", "empty", "genomic instability and mutation",
    "sustaining proliferative signaling", "avoiding immune destruction",
    "activating invasion and metastasis", "enabling replicative immortality",
)
ANSWER_PREFIX = "the type of this document is"


def target(labels: str) -> str:
    return f"{ANSWER_PREFIX} {labels}."


def split_labels(text: str) -> set[str]:
    return {w.strip() for w in text.strip().split("|")}


class HoC(Task):
    name = "hoc"
    layout = {"train": "biogpt/HoC/raw/train.tsv", "val": "biogpt/HoC/raw/valid.tsv", "test": "biogpt/HoC/raw/test.tsv"}
    labels = CLASSES
    answer_prefix = ANSWER_PREFIX

    def read(self, path: Path) -> dict[str, dict]:
        require_file(path, f"BioGPT's HoC split ({path.name})")
        items: dict[str, dict] = {}
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                parts = line.rstrip("\n").split("\t")
                if len(parts) < 2:
                    raise DataFileError(f"{path}:{n}", "expected 'sentence<TAB>labels'; restore the original file")
                items[str(len(items))] = {"text": parts[0].strip(), "labels": parts[-1].strip()}
        return items

    def source(self, key: str, item: dict, path: Path) -> str:
        return item["text"]

    def example(self, key: str, item: dict, path: Path) -> Example:
        return Example(key, item["text"], target(item["labels"]), item["labels"])

    def biogpt_source(self, key: str, item: dict) -> str:
        s = item["text"]
        return s if s.endswith(".") else s + "."

    def target(self, label: str) -> str:
        return target(label)

    def test_set(self, paths: Mapping[str, Path]) -> HoCTest:
        return HoCTest(self, self.read(paths["test"]), paths["test"])


class HoCTest(TestSet):
    # pmids(): the TSV carries no PMIDs, so the contamination guard cannot check HoC

    def render(self, key: str) -> str:
        return target(self.items[key]["labels"])

    def score(self, predictions: dict[str, str], ids: list[str] | None = None, source: str = "predictions") -> Score:
        ids = self.ids() if ids is None else ids
        al = align(self.name, predictions, ids, set(self.items), source)
        gold = [split_labels(self.items[i]["labels"]) for i in ids]
        raw = [FAILED if t is None else answer_after(t, ANSWER_PREFIX) for t in al.texts]
        pred = [set() if r == FAILED else split_labels(r) for r in raw]
        m = multilabel_micro_f1(gold, pred, CLASSES)
        return Score(self.name, {"f1": m["f1"], "precision": m["precision"], "recall": m["recall"]},
                     {"evaluated": len(ids), "missing": al.missing, "unknown_ids": al.unknown,
                      "failed": sum(r == FAILED for r in raw)},
                     [{"id": i, "gold": sorted(g), "extracted": sorted(p)} for i, g, p in zip(ids, gold, pred, strict=True)])


TASK = HoC()
