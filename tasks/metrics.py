"""Metric definitions (see docs/eval.md): pure Python, so they can be checked by hand and read by any app."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def f1_of(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 2.0 * p * r / (p + r)


# ----------------------------------------------------------------------------- single-label
def accuracy(gold: Sequence[str], pred: Sequence[str]) -> float:
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold labels but {len(pred)} predictions")
    return sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold) if gold else 0.0


def confusion(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> list[list[int]]:
    """rows = gold label, columns = `labels` then one column for anything else (e.g. 'failed')."""
    index = {label: i for i, label in enumerate(labels)}
    m = [[0] * (len(labels) + 1) for _ in labels]
    for g, p in zip(gold, pred, strict=True):
        m[index[g]][index.get(p, len(labels))] += 1
    return m


def macro_f1(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> float:
    """Mean over `labels` of per-class F1 (0 where undefined), as sklearn's
    f1_score(average='macro', labels=labels, zero_division=0): an unparsable prediction is a
    miss for its gold class and no class's false positive."""
    scores = []
    for c in labels:
        tp = sum(g == c and p == c for g, p in zip(gold, pred, strict=True))
        fp = sum(g != c and p == c for g, p in zip(gold, pred, strict=True))
        fn = sum(g == c and p != c for g, p in zip(gold, pred, strict=True))
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        scores.append(f1_of(prec, rec))
    return sum(scores) / len(scores)


# ----------------------------------------------------------------------------- multi-label (HoC)
def multilabel_micro_f1(gold: Sequence[set[str]], pred: Sequence[set[str]], classes: Sequence[str]) -> dict:
    """Micro P/R/F1 over a (sample x class) indicator matrix restricted to `classes`, as
    sklearn's MultiLabelBinarizer(classes) + f1_score(average='micro'): unknown labels ignored."""
    known = set(classes)
    tp = fp = fn = 0
    for g, p in zip(gold, pred, strict=True):
        g, p = g & known, p & known
        tp += len(g & p)
        fp += len(p - g)
        fn += len(g - p)
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": prec, "recall": rec, "f1": f1_of(prec, rec)}


# ----------------------------------------------------------------------------- set-based (BC5CDR)
@dataclass(frozen=True, slots=True)
class Counts:
    tp: int
    n_pred: int
    n_gold: int

    @property
    def precision(self) -> float:
        return self.tp / self.n_pred if self.n_pred else 0.0

    @property
    def recall(self) -> float:
        return self.tp / self.n_gold if self.n_gold else 0.0

    @property
    def f1(self) -> float:
        return f1_of(self.precision, self.recall)

    def as_dict(self) -> dict:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1,
                "tp": self.tp, "n_pred": self.n_pred, "n_gold": self.n_gold}


def micro_counts(gold: Iterable, pred: Iterable) -> Counts:
    """Micro P/R/F1 over two collections of hashable items (duplicates count once)."""
    g, p = set(gold), set(pred)
    return Counts(len(g & p), len(p), len(g))


# ----------------------------------------------------------------------------- BioGPT hard match (DDI, KD-DTI)
_ROMAN = {"0": "0", "1": "I", "2": "II", "3": "III", "4": "IV", "5": "V", "6": "VI", "7": "VII", "8": "VIII", "9": "IX"}


def normalize_name(s: str) -> str:
    """A trailing single digit becomes a roman numeral, '-type' goes, then only [a-zA-Z0-9] stays."""
    s = s.strip()
    if len(s) > 2 and s[-1].isnumeric() and not s[-2].isnumeric() and s[-1] in _ROMAN:
        s = s[:-1] + _ROMAN[s[-1]]
    s = s.replace("-type", "")
    return re.sub("[^a-zA-Z0-9]+", "", s)


def _body(s: str) -> str:
    """'aaa (bb)' -> 'aaa' (the name without a trailing bracketed abbreviation)."""
    s = s.strip()
    return normalize_name(s[: s.rfind("(")].strip()) if "(" in s and s.endswith(")") else normalize_name(s)


def _abbr(s: str) -> str:
    """'aaa (bb)' -> 'bb' (the abbreviation alone)."""
    s = s.strip()
    return normalize_name(s[s.rfind("(") + 1: -1].strip()) if "(" in s and s.endswith(")") else normalize_name(s)


def _map(items: set, fn) -> set:
    return {tuple(fn(x) for x in t) if isinstance(t, tuple) else fn(t) for t in items}


def set_precision(pred: set, gold: set) -> float:
    """BioGPT's multi-label precision: an empty prediction scores 1 only against an empty gold."""
    return float(pred == gold) if not pred else len(pred & gold) / len(pred)


def set_recall(pred: set, gold: set) -> float:
    return float(pred == gold) if not gold else len(pred & gold) / len(gold)


def normed(metric, pred: set, gold: set) -> float:
    """Both the body and the abbreviation of a name match: the better of the two readings."""
    return max(metric(_map(pred, _abbr), _map(gold, _abbr)), metric(_map(pred, _body), _map(gold, _body)))


def hard_key(triple: tuple[str, ...]) -> tuple[str, ...]:
    """BioGPT compares lower-cased names with spaces removed (entity names are case-insensitive)."""
    return tuple(x.strip().lower().replace(" ", "") for x in triple)


@dataclass(frozen=True, slots=True)
class HardMatch:
    """BioGPT's hard_match_evaluation.py numbers.

    precision/recall/f1: per-document multi-label P and R (normed), averaged over documents; f1
    is the mean of per-document F1 (BioGPT prints it as 'tp micro f1'; the published DDI and
    KD-DTI numbers are these three). macro_f1 = F1 of the averaged P and R. ontology_*: P/R/F1 of
    the union of all documents' triples (document identity dropped), BioGPT's 'Ontology' line.
    """

    precision: float
    recall: float
    f1: float
    macro_f1: float
    ontology_precision: float
    ontology_recall: float
    ontology_f1: float
    documents: int
    n_pred: int
    n_gold: int

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}


def hard_match(pairs: Sequence[tuple[set, set]]) -> HardMatch:
    """`pairs`: per document (predicted triples, gold triples), each already `hard_key`-ed."""
    ps, rs, fs = [], [], []
    all_pred: set = set()
    all_gold: set = set()
    for pred, gold in pairs:
        p, r = normed(set_precision, pred, gold), normed(set_recall, pred, gold)
        ps.append(p)
        rs.append(r)
        fs.append(f1_of(p, r))
        all_pred |= pred
        all_gold |= gold
    n = len(pairs)
    ave = (lambda xs: sum(xs) / n) if n else (lambda xs: 0.0)
    op, orr = normed(set_precision, all_pred, all_gold), normed(set_recall, all_pred, all_gold)
    return HardMatch(
        precision=ave(ps), recall=ave(rs), f1=ave(fs), macro_f1=f1_of(ave(ps), ave(rs)),
        ontology_precision=op, ontology_recall=orr, ontology_f1=f1_of(op, orr), documents=n,
        n_pred=sum(len(p) for p, _ in pairs), n_gold=sum(len(g) for _, g in pairs),
    )
