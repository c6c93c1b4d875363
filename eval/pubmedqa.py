"""PubMedQA (PQA-L, BioGPT's split: 500 test questions) scored from generated text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from eval.benchmark import Score, align
from eval.errors import DataFileError
from eval.files import load_json
from eval.metrics import accuracy, confusion, macro_f1
from eval.postprocess import FAILED, QA_PATTERN, extract_answer, normalize_line, render_answer

LABELS = ("yes", "no", "maybe")
ANSWER_PREFIX = "the answer to the question given the context is"


def answer_of(text: str) -> str:
    """BioGPT's extraction; in addition a prediction that is nothing but a label ("Yes", "no.")
    counts as that label (BioGPT never writes one, so its outputs score the same)."""
    answer = extract_answer(text, QA_PATTERN)
    if answer == FAILED:
        bare = normalize_line(text).strip().lower()
        return bare if bare in LABELS else FAILED
    return answer


@dataclass(frozen=True)
class PubMedQAFiles:
    gold: str = "pubmedqa/test_ground_truth.json"
    questions: str = "pubmedqa/pqal_test_set.json"


class PubMedQA:
    name = "pubmedqa"

    def __init__(self, data_dir: Path, files: PubMedQAFiles = PubMedQAFiles()):
        self.data_dir = Path(data_dir)
        self.files = files
        gold_path = self.data_dir / files.gold
        raw = load_json(gold_path, "PubMedQA test answers (test_ground_truth.json)")
        self.gold = {str(k): str(v).lower() for k, v in raw.items()}
        bad = sorted({v for v in self.gold.values() if v not in LABELS})
        if bad:
            raise DataFileError(gold_path, f"labels {bad} are not yes/no/maybe; restore the original file")
        self._questions: dict | None = None

    def ids(self) -> list[str]:
        return list(self.gold)

    def pmids(self) -> set[str]:
        return set(self.gold)

    def item(self, pmid: str) -> dict:
        """The raw test item (QUESTION, CONTEXTS, ...), as train/'s fine-tuning formats read it."""
        path = self.data_dir / self.files.questions
        if self._questions is None:
            self._questions = load_json(path, "PubMedQA test questions (pqal_test_set.json)")
        if pmid not in self._questions:
            raise DataFileError(path, f"has no question {pmid} of {self.files.gold}; the two files are from different splits")
        return self._questions[pmid]

    def prompt(self, pmid: str) -> str:
        """BioGPT's source: 'question: {q} context: {sentences joined} ', lower-cased."""
        item = self.item(pmid)
        context = re.sub(r"\s+", " ", " ".join(s.strip() for s in item["CONTEXTS"]))
        return f"question: {item['QUESTION'].strip()} context: {context.strip()} ".lower()

    def render(self, pmid: str) -> str:
        """The gold answer in BioGPT's target format."""
        return render_answer(self.gold[pmid])

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
