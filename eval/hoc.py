"""Hallmarks of Cancer (BioGPT's DC-HoC): labels parsed from generated text, micro-F1 over 11 classes."""

from __future__ import annotations

from pathlib import Path

from eval.benchmark import Score, align
from eval.errors import DataFileError
from eval.files import require_file
from eval.metrics import multilabel_micro_f1
from eval.postprocess import FAILED, HOC_PATTERN, extract_answer, render_hoc

CLASSES = (
    "tumor promoting inflammation", "inducing angiogenesis", "evading growth suppressors",
    "resisting cell death", "cellular energetics", "empty", "genomic instability and mutation",
    "sustaining proliferative signaling", "avoiding immune destruction",
    "activating invasion and metastasis", "enabling replicative immortality",
)


def split_labels(text: str) -> set[str]:
    return {w.strip() for w in text.strip().split("|")}


class HoC:
    """Ids are the 0-based positions of the non-blank lines of test.tsv (BioGPT's sample order)."""

    name = "hoc"

    def __init__(self, data_dir: Path, test: str = "biogpt/HoC/raw/test.tsv"):
        path = require_file(Path(data_dir) / test, "BioGPT's HoC test set (HoC/raw/test.tsv)")
        self.sentences: list[str] = []
        self.labels: list[str] = []
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                parts = line.rstrip("\n").split("\t")
                if len(parts) < 2:
                    raise DataFileError(f"{path}:{n}", "expected 'sentence<TAB>labels'; restore the original file")
                self.sentences.append(parts[0].strip())
                self.labels.append(parts[-1].strip())

    def ids(self) -> list[str]:
        return [str(i) for i in range(len(self.labels))]

    def pmids(self) -> set[str]:
        return set()  # the TSV carries no PMIDs, so the contamination guard cannot check HoC

    def prompt(self, key: str) -> str:
        s = self.sentences[int(key)]
        return s if s.endswith(".") else s + "."

    def render(self, key: str) -> str:
        return render_hoc(self.labels[int(key)])

    def score(self, predictions: dict[str, str], ids: list[str] | None = None, source: str = "predictions") -> Score:
        ids = self.ids() if ids is None else ids
        al = align(self.name, predictions, ids, set(self.ids()), source)
        gold = [split_labels(self.labels[int(i)]) for i in ids]
        raw = [FAILED if t is None else extract_answer(t, HOC_PATTERN) for t in al.texts]
        pred = [set() if r == FAILED else split_labels(r) for r in raw]
        m = multilabel_micro_f1(gold, pred, CLASSES)
        return Score(self.name, {"f1": m["f1"], "precision": m["precision"], "recall": m["recall"]},
                     {"evaluated": len(ids), "missing": al.missing, "unknown_ids": al.unknown,
                      "failed": sum(r == FAILED for r in raw)},
                     [{"id": i, "gold": sorted(g), "extracted": sorted(p)} for i, g, p in zip(ids, gold, pred, strict=True)])
