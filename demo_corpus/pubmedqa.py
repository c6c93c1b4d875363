"""A PubMedQA-style (PQA-L layout) question set about abstracts of the demo corpus.

Each item is built from one structured research abstract of the demo corpus, exactly as PubMedQA
builds its items: CONTEXTS are the abstract's sections without the conclusion (with their LABELS),
LONG_ANSWER is the conclusion, and `final_decision` is the study's result:

- yes:   the results state a significant effect in the asked direction ("significantly reduced ... p < 0.01");
- no:    no significant effect ("had no significant effect", "was not associated"), or a significant
         effect in the other direction ("Unexpectedly, ... significantly increased");
- maybe: mixed or inconclusive results ("a non-significant trend", "inconclusive").

The question ("Does gefitinib reduce cell viability in A549 cells?") is worded from the study's
design only, never from its result, so it cannot be answered without reading the context. The
items' PMIDs are PMIDs of abstracts in the corpus (both come from `plan_corpus`), so the
pipeline's decontamination by PMID visibly removes them from pretraining.

Files (names as in ../shared/data/pubmedqa): ori_pqal.json (all items), pqal_fold0_train_set.json,
pqal_fold0_dev_set.json, pqal_test_set.json, test_ground_truth.json, pqal_test_pmids.txt,
pqal_trainval_pmids.txt.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from common.atomic import atomic_write_bytes
from common.config import ConfigError
from demo_corpus import N_ABSTRACTS, N_FULLTEXT, SEED
from demo_corpus import corpus as demo

QA_MARKER = "demo_pubmedqa.json"
QA_VERSION = 1
_CONTEXT_CATEGORIES = ("BACKGROUND", "OBJECTIVE", "METHODS", "RESULTS")


@dataclass(frozen=True, slots=True)
class QASplits:
    train: int = 600
    dev: int = 100
    test: int = 200

    @property
    def total(self) -> int:
        return self.train + self.dev + self.test


def _item(rec: demo.Record, seed: int) -> dict:
    """One PQA-L item, read back from the record's own PubMed XML (so it matches the corpus)."""
    assert rec.study is not None
    root = etree.fromstring(demo.pubmed_article_xml(rec, seed).encode())
    contexts, labels, long_answer = [], [], []
    for el in root.iter("AbstractText"):
        text = "".join(el.itertext())
        if el.get("NlmCategory") in _CONTEXT_CATEGORIES:
            contexts.append(text)
            labels.append(el.get("Label"))
        else:
            long_answer.append(text)
    answer = rec.study.answer
    return {
        "QUESTION": demo.v.question(rec.study),
        "CONTEXTS": contexts,
        "LABELS": labels,
        "MESHES": [d.text for d in root.iter("DescriptorName")],
        "YEAR": root.findtext(".//PubDate/Year"),
        # Model predictions in the real set; here the generator knows the answer, so both equal it.
        "reasoning_required_pred": answer,
        "reasoning_free_pred": answer,
        "final_decision": answer,
        "LONG_ANSWER": " ".join(long_answer),
    }


def build_items(seed: int, n_abstracts: int, n_fulltext: int, splits: QASplits) -> dict[str, dict[str, dict]]:
    """split name ("train" | "dev" | "test") -> {pmid: item}; deterministic in its arguments."""
    plan = demo.plan_corpus(seed, n_abstracts, n_fulltext)
    pool = list(plan.qa_candidates)
    if len(pool) < splits.total:
        raise ConfigError("demo_qa.splits", f"asks for {splits.total} items but the demo corpus with n_abstracts={n_abstracts} "
                                            f"has only {len(pool)} eligible abstracts; raise n_abstracts or lower the split sizes")
    random.Random(f"biogpt-demo:{seed}:pubmedqa").shuffle(pool)
    chosen = pool[: splits.total]
    cuts = {"test": chosen[: splits.test], "dev": chosen[splits.test: splits.test + splits.dev],
            "train": chosen[splits.test + splits.dev:]}
    return {name: {str(r.pmid): _item(r, seed) for r in sorted(recs, key=lambda r: r.pmid)} for name, recs in cuts.items()}


def _json(obj: object) -> bytes:
    return json.dumps(obj, indent=4).encode()  # indent 4, ASCII escapes, no final newline: as upstream


def generate_demo_pubmedqa(dest_dir: Path, corpus: Path | int = SEED, *, n_abstracts: int = N_ABSTRACTS,
                           n_fulltext: int = N_FULLTEXT,
                           splits: QASplits = QASplits()) -> dict[str, Path]:
    """Write the demo PubMedQA set under `dest_dir`; returns file role -> path.

    `corpus` is either the folder of a generated demo corpus (its seed and sizes are read from its
    marker, so the items match that corpus) or a seed (then `n_abstracts` / `n_fulltext` must be
    the ones the corpus is generated with). Idempotent: a finished set with the same arguments is
    not rewritten.
    """
    if isinstance(corpus, (str, Path)):
        args = demo.marker_args(Path(corpus))
        seed, n_abstracts, n_fulltext = args["seed"], args["n_abstracts"], args["n_fulltext"]
    else:
        seed = corpus
    dest_dir = Path(dest_dir)
    names = {"all": "ori_pqal.json", "train": "pqal_fold0_train_set.json", "dev": "pqal_fold0_dev_set.json",
             "test": "pqal_test_set.json", "ground_truth": "test_ground_truth.json",
             "test_pmids": "pqal_test_pmids.txt", "trainval_pmids": "pqal_trainval_pmids.txt"}
    paths = {k: dest_dir / n for k, n in names.items()}
    args = {"version": QA_VERSION, "seed": seed, "n_abstracts": n_abstracts, "n_fulltext": n_fulltext,
            "train": splits.train, "dev": splits.dev, "test": splits.test}
    try:
        if json.loads((dest_dir / QA_MARKER).read_text()) == args and all(p.is_file() for p in paths.values()):
            return paths
    except (OSError, ValueError):
        pass
    items = build_items(seed, n_abstracts, n_fulltext, splits)
    everything = {**items["train"], **items["dev"], **items["test"]}
    everything = {k: everything[k] for k in sorted(everything, key=int)}

    def pmids(*names_: str) -> bytes:  # one per line, sorted numerically (as the shared files)
        return "".join(f"{p}\n" for p in sorted((p for n in names_ for p in items[n]), key=int)).encode()

    files = {
        "all": _json(everything), "train": _json(items["train"]), "dev": _json(items["dev"]), "test": _json(items["test"]),
        "ground_truth": _json({p: it["final_decision"] for p, it in items["test"].items()}),
        "test_pmids": pmids("test"), "trainval_pmids": pmids("train", "dev"),
    }
    for key, data in files.items():
        atomic_write_bytes(paths[key], data)
    atomic_write_bytes(dest_dir / QA_MARKER, (json.dumps(args) + "\n").encode())
    return paths
