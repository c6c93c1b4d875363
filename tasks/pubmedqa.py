"""PubMedQA (PQA-L; BioGPT's split: fold 0 for fine-tuning, the 500 test questions for scoring).

Source `question: {QUESTION} context: {CONTEXTS joined}` -> target
`the answer to the question given the context is {yes|no|maybe}.` (BioGPT's wording; this module
is the only place it is written). Scored by accuracy and macro-F1 over the three labels.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from tasks.base import DataFileError, Example, Mode, Score, Task, TestSet, align, item_field, load_json
from tasks.metrics import accuracy, confusion, macro_f1
from tasks.text import FAILED, answer_after, normalize_line

LABELS = ("yes", "no", "maybe")
ANSWER_PREFIX = "the answer to the question given the context is"


def target(label: str) -> str:
    return f"{ANSWER_PREFIX} {label}."


def answer_of(text: str) -> str:
    """BioGPT's extraction; in addition a prediction that is nothing but a label ("Yes", "no.")
    counts as that label (BioGPT never writes one, so its outputs score the same)."""
    answer = answer_after(text, ANSWER_PREFIX)
    if answer == FAILED:
        bare = normalize_line(text).strip().lower()
        return bare if bare in LABELS else FAILED
    return answer


class PubMedQA(Task):
    name = "pubmedqa"
    modes = (Mode.likelihood, Mode.generate)
    layout = {"train": "pubmedqa/pqal_fold0_train_set.json", "val": "pubmedqa/pqal_fold0_dev_set.json",
              "test": "pubmedqa/pqal_test_set.json", "gold": "pubmedqa/test_ground_truth.json"}
    labels = LABELS
    answer_prefix = ANSWER_PREFIX

    def source(self, key: str, item: dict, path: Path) -> str:
        q = str(item_field(item, "QUESTION", path, key)).strip()
        ctx = item_field(item, "CONTEXTS", path, key)
        ctx = " ".join(c.strip() for c in ctx) if isinstance(ctx, list) else str(ctx).strip()
        return f"question: {q} context: {ctx}"

    def example(self, key: str, item: dict, path: Path) -> Example:
        label = str(item_field(item, "final_decision", path, key)).strip().lower()
        if label not in LABELS:
            raise DataFileError(path, f"item {key!r} final_decision={label!r}, expected yes/no/maybe")
        return Example(key, self.source(key, item, path), target(label), label)

    def biogpt_source(self, key: str, item: dict) -> str:
        """BioGPT's source: 'question: {q} context: {sentences joined} ', lower-cased."""
        context = re.sub(r"\s+", " ", " ".join(s.strip() for s in item["CONTEXTS"]))
        return f"question: {item['QUESTION'].strip()} context: {context.strip()} ".lower()

    def target(self, label: str) -> str:
        return target(label)

    def test_set(self, paths: Mapping[str, Path]) -> PubMedQATest:
        return PubMedQATest(self, paths["test"], paths["gold"])


class PubMedQATest(TestSet):
    """The gold answers (`gold`, {pmid: label}) and, read when a prompt is needed, the questions (`test`)."""

    def __init__(self, task: PubMedQA, questions: Path, gold: Path):
        raw = load_json(gold, "PubMedQA test answers (test_ground_truth.json)")
        if not isinstance(raw, dict):
            raise DataFileError(gold, "expected {pmid: label}; restore the original file")
        self.gold = {str(k): str(v).lower() for k, v in raw.items()}
        bad = sorted({v for v in self.gold.values() if v not in LABELS})
        if bad:
            raise DataFileError(gold, f"labels {bad} are not yes/no/maybe; restore the original file")
        super().__init__(task, {}, questions)
        self.gold_path = gold
        self._loaded = False

    def ids(self) -> list[str]:
        return list(self.gold)

    def pmids(self) -> set[str]:
        return set(self.gold)

    def item(self, pmid: str) -> dict:
        """The raw test item (QUESTION, CONTEXTS, ...)."""
        if not self._loaded:
            self.items = self.task.read(self.path)
            self._loaded = True
        if pmid not in self.items:
            raise DataFileError(self.path, f"has no question {pmid} of {self.gold_path.name}; "
                                           "the two files are from different splits")
        return self.items[pmid]

    def render(self, pmid: str) -> str:
        return target(self.gold[pmid])

    def score(self, predictions: dict[str, str], ids: list[str] | None = None,
              source: str = "predictions") -> Score:
        ids = self.ids() if ids is None else ids
        al = align(self.name, predictions, ids, set(self.gold), source)
        gold = [self.gold[i] for i in ids]
        pred = [FAILED if t is None else answer_of(t) for t in al.texts]
        cm = confusion(gold, pred, LABELS)
        return Score(
            task=self.name,
            metrics={"accuracy": accuracy(gold, pred), "macro_f1": macro_f1(gold, pred, LABELS)},
            counts={"evaluated": len(ids), "missing": al.missing, "unknown_ids": al.unknown,
                    "failed": sum(p not in LABELS for p in pred)},
            items=[{"id": i, "gold": g, "extracted": p} for i, g, p in zip(ids, gold, pred, strict=True)],
            extra={"confusion": {"rows_gold": list(LABELS), "columns_pred": [*LABELS, "other"], "matrix": cm}},
        )


TASK = PubMedQA()
