"""Fixtures for the pipeline tests: small generated PubMed files (baseline + update) and helpers."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from data_prep.config import PrepConfig, build_config, register_schemas
from data_prep.pipeline.markers import sha256_file
from tests.conftest import ROOT

# Overrides that make a pipeline run on a handful of generated records take about a second.
FAST_PREP = ["tokenizer.vocab_size=600", "split.val_fraction=0.1", "progress=false", "summary.histogram=false",
             "summary.print=false", "decontam.enabled=false"]


def compose_prep(overrides: list[str]) -> DictConfig:
    """conf/prep.yaml composed with `overrides`, as `python -m data_prep` composes it."""
    register_schemas()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="prep", overrides=overrides)


def run_prep(overrides: list[str]) -> dict | None:
    """`python -m data_prep <overrides>` in this process (composed as the CLI composes it)."""
    from data_prep.pipeline.driver import run

    return run(OmegaConf.to_container(compose_prep(overrides), resolve=True))


def prep_env(env: dict | None = None) -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
            **(env or {})}


def prep_cli(args: list[str], env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m data_prep <args>` as a user runs it."""
    return subprocess.run([sys.executable, "-m", "data_prep", *args], cwd=ROOT, capture_output=True, text=True,
                          env=prep_env(env), timeout=timeout)


def prep_popen(args: list[str], env: dict | None = None) -> subprocess.Popen:
    """A data_prep run in its own process group (kill it with os.killpg), stdout+stderr merged."""
    return subprocess.Popen([sys.executable, "-m", "data_prep", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True, env=prep_env(env))


def wait_for_line(p: subprocess.Popen, text: str) -> list[str]:
    """Read p's output until a line contains `text`; the lines read (fails if p ends first)."""
    seen = []
    for line in p.stdout:  # type: ignore[union-attr]
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"the run ended before printing {text!r} (rc={p.wait()}):\n{''.join(seen)[-3000:]}")


def kill_at(args: list[str], point: str) -> None:
    """Start `python -m data_prep <args>` paused at pause point `point`, then kill -9 it and its workers."""
    p = prep_popen(args, env={"DATA_PREP_PAUSE_AT": point})
    try:
        wait_for_line(p, f"paused at {point}")
    finally:
        os.killpg(p.pid, signal.SIGKILL)  # the run and its workers
        p.wait()


def output_bytes(out_dir: Path) -> dict[str, str]:
    """sha256 of every output that must be byte-identical (manifest, documents, tokenizer, shards)."""
    files = [out_dir / "manifest.json", out_dir / "tokenizer" / "tokenizer.json"]
    files += sorted((out_dir / "documents").glob("*.parquet")) + sorted((out_dir / "shards").glob("*"))
    return {str(p.relative_to(out_dir)): sha256_file(p) for p in files}


def prep_config(**sections: Any) -> PrepConfig:
    """A checked prep config: the demo source (nothing to find on disk) and these sections, e.g.
    `prep_config(filter={"min_chars": 50}).filter`. The way every config section is built."""
    return build_config({"out_dir": "unused", "source": {"name": "demo"}, **sections})


WORDS = ("imatinib inhibited BCR-ABL kinase activity with an IC50 of 0.25 µM in K562 leukemia cells "
         "while metformin lowered HbA1c and aspirin reduced platelet aggregation p < 0.05 in patients "
         "receiving 100 mg daily the TP53 BRCA1 EGFR mutations were associated with resistance").split()


def abstract_text(seed: int, n_words: int = 60) -> str:
    h = hashlib.sha256(str(seed).encode()).digest()
    return " ".join(WORDS[(h[i % 32] + i * 7) % len(WORDS)] for i in range(n_words)).capitalize() + "."


def citation(pmid: int, title: str, abstract: str, version: int = 1, lang: str = "eng") -> str:
    title, abstract = escape(title), escape(abstract)
    return f"""<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM">
<PMID Version="{version}">{pmid}</PMID>
<Article PubModel="Print"><Journal><Title>Journal of Generated Tests</Title>
<JournalIssue><PubDate><Year>2024</Year></PubDate></JournalIssue></Journal>
<ArticleTitle>{title}</ArticleTitle>
<Abstract><AbstractText Label="RESULTS">{abstract}</AbstractText></Abstract>
<Language>{lang}</Language>
<PublicationTypeList><PublicationType UI="D016428">Journal Article</PublicationType></PublicationTypeList>
</Article></MedlineCitation>
<PubmedData><ArticleIdList><ArticleId IdType="pubmed">{pmid}</ArticleId></ArticleIdList></PubmedData>
</PubmedArticle>
"""


def pubmed_file(path: Path, citations: list[str], deletions: tuple[int, ...] = ()) -> Path:
    dels = ""
    if deletions:
        dels = "<DeleteCitation>" + "".join(f'<PMID Version="1">{p}</PMID>' for p in deletions) + "</DeleteCitation>"
    path.write_text('<?xml version="1.0" encoding="utf-8"?>\n<PubmedArticleSet>\n'
                    + "".join(citations) + dels + "</PubmedArticleSet>\n", encoding="utf-8")
    return path


BASE_PMIDS = tuple(range(9_000_001, 9_000_041))
DELETED_PMID = BASE_PMIDS[3]
REVISED_PMID = BASE_PMIDS[5]
REVISED_TITLE = "Revised title of a generated citation about imatinib"


def write_generated_pubmed(folder: Path) -> dict:
    """A baseline file and an update file (named like NCBI's, so they load in that order)."""
    folder.mkdir(parents=True, exist_ok=True)
    base = [citation(p, f"Generated study {p} of kinase inhibitors", abstract_text(p)) for p in BASE_PMIDS]
    pubmed_file(folder / "pubmed26n0001.xml", base)
    update = [citation(REVISED_PMID, REVISED_TITLE, abstract_text(REVISED_PMID + 1), version=2),
              citation(9_000_100, "A new citation in the update file on metformin", abstract_text(9_000_100))]
    pubmed_file(folder / "pubmed26n0002.xml", update, deletions=(DELETED_PMID,))
    return {"deleted": DELETED_PMID, "revised": REVISED_PMID}


def write_hostile(path: Path) -> Path:
    path.write_text('<?xml version="1.0"?>\n<!DOCTYPE PubmedArticleSet [\n<!ENTITY a "lol">\n'
                    '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">\n<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">\n]>\n'
                    "<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>1</PMID><Article>"
                    "<ArticleTitle>&c;</ArticleTitle></Article></MedlineCitation></PubmedArticle></PubmedArticleSet>\n")
    return path


TRUNCATED_PMIDS = tuple(range(9_200_001, 9_200_301))


def write_truncated_gzip(path: Path) -> Path:
    """A PubMed .xml.gz cut in the middle: the parser yields records, then fails."""
    import gzip

    plain = path.with_suffix("")
    pubmed_file(plain, [citation(p, f"Truncated file study {p}", abstract_text(p)) for p in TRUNCATED_PMIDS])
    data = gzip.compress(plain.read_bytes(), mtime=0)
    plain.unlink()
    path.write_bytes(data[: len(data) * 2 // 3])
    return path
