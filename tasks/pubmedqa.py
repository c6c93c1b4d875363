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


# Likelihood scoring (`task.mode=likelihood`) picks the label whose continuation " {label}." is most
# likely after the answer prefix. Summed log-probabilities favour shorter continuations, so the
# pick is also made with the score divided by the continuation's length in tokens and in UTF-8
# bytes (lm-evaluation-harness's acc_norm divides by its length in characters; the labels are
# ASCII, so bytes and characters agree). results.json: accuracy (summed), accuracy_norm_token,
# accuracy_norm_byte.
NORMS = {"sum": "accuracy", "token": "accuracy_norm_token", "byte": "accuracy_norm_byte"}


def likelihood_picks(scores: list[float], n_tokens: list[int], n_bytes: list[int]) -> dict[str, int]:
    """The index of the best option under each normalisation of NORMS (ties: the first option)."""
    def best(values: list[float]) -> int:
        return max(range(len(values)), key=values.__getitem__)

    return {"sum": best(scores),
            "token": best([s / max(n, 1) for s, n in zip(scores, n_tokens, strict=True)]),
            "byte": best([s / max(n, 1) for s, n in zip(scores, n_bytes, strict=True)])}


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

    def normalised_accuracy(self, picks: Mapping[str, Mapping[str, str]], ids: list[str]) -> dict[str, float]:
        """accuracy_norm_token / accuracy_norm_byte from each id's label under each normalisation
        (`picks[id][norm]`, norm in NORMS); ids without picks count as wrong."""
        gold = [self.gold[i] for i in ids]
        return {NORMS[n]: accuracy(gold, [picks.get(i, {}).get(n, FAILED) for i in ids]) for n in ("token", "byte")}

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
