"""`source=demo`: the embedded demo corpus as an input source (the generator is `demo_corpus`).

The files are generated into `<cache>/demo` (byte-identical for the same `source.*` values, and
not rewritten when already there). With decontamination on, the demo PubMedQA-style set about
corpus abstracts is generated beside them and added as an eval set, which is what makes
`make demo` show decontamination at work (docs/demo.md).
"""

from __future__ import annotations

from pathlib import Path

from data_prep.sources.config import DemoSource
from data_prep.sources.types import InputFile
from data_prep.text.decontam import EvalSource
from demo_corpus import corpus, pubmedqa

QA_SET = "demo_pubmedqa"


def resolve(src: DemoSource, cache_dir: Path) -> list[InputFile]:
    paths = corpus.generate_demo_corpus(Path(cache_dir) / "demo", seed=src.seed, n_abstracts=src.n_abstracts,
                                        n_fulltext=src.n_fulltext)
    return [InputFile(path=Path(p), order=i, meta={}) for i, p in enumerate(paths)]


def eval_sources(cache_dir: Path) -> list[EvalSource]:
    """The demo PubMedQA set (generated from the corpus under `cache_dir/demo`) as an eval set.

    A small corpus (tests) gets the default split proportions with fewer items."""
    qa_dir = Path(cache_dir) / QA_SET
    corpus_dir = Path(cache_dir) / "demo"
    splits = pubmedqa.QASplits()
    args = corpus.marker_args(corpus_dir)
    eligible = len(corpus.plan_corpus(args["seed"], args["n_abstracts"], args["n_fulltext"]).qa_candidates)
    if eligible < splits.total:
        f = eligible / splits.total
        splits = pubmedqa.QASplits(train=int(splits.train * f), dev=int(splits.dev * f), test=int(splits.test * f))
    pubmedqa.generate_demo_pubmedqa(qa_dir, corpus_dir, splits=splits)
    return [EvalSource(QA_SET, str(qa_dir.resolve()), "pubmedqa")]
