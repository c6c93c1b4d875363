"""Several pipeline runs in one process, each with its own filter config: nothing of one run may
leak into the next (the filters were once cached by `id()` of the config, and a later run got an
earlier run's English-only filter)."""

from __future__ import annotations

import gc
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf

from data_prep.pipeline.driver import run
from tests.data_prep.conftest import (
    BASE_PMIDS,
    FAST_PREP,
    abstract_text,
    citation,
    compose_prep,
    pubmed_file,
    write_generated_pubmed,
)

FAST = FAST_PREP
FRENCH = tuple(range(9_300_001, 9_300_013))


def languages(out: Path) -> dict[str, str]:
    t = pq.read_table(out / "documents", columns=["id", "language"]).to_pydict()
    return dict(zip(t["id"], t["language"], strict=True))


def run_in_process(corpus: Path, out: Path, *overrides: str) -> dict:
    manifest = run(OmegaConf.to_container(compose_prep([f"source.path={corpus}", f"out_dir={out}", *FAST,
                                                         *overrides]), resolve=True))
    gc.collect()  # free this run's config objects, as a long-lived process would
    return manifest


def test_runs_in_one_process_each_get_their_own_filters(tmp_path):
    corpus = tmp_path / "in"
    write_generated_pubmed(corpus)  # 40 English records after the update's deletion and addition
    pubmed_file(corpus / "zz_french.xml", [citation(p, f"Étude {p} sur les inhibiteurs", abstract_text(p), lang="fre")
                                           for p in FRENCH])
    n_english, n_french = len(BASE_PMIDS), len(FRENCH)

    english = run_in_process(corpus, tmp_path / "a")
    assert set(languages(tmp_path / "a").values()) == {"eng"}
    assert english["dropped"] == {"non_english": n_french}

    french = run_in_process(corpus, tmp_path / "b", "filter.keep_languages=[fre]", "workers=2")
    assert set(languages(tmp_path / "b").values()) == {"fre"}
    assert french["counts"]["kept"] == n_french and french["dropped"] == {"non_english": n_english}

    everything = run_in_process(corpus, tmp_path / "c", "filter.keep_languages=null")
    langs = languages(tmp_path / "c")
    assert sorted(set(langs.values())) == ["eng", "fre"]  # the non-English documents are kept
    assert everything["counts"]["kept"] == n_english + n_french and everything["dropped"] == {}

    english_again = run_in_process(corpus, tmp_path / "d")
    assert languages(tmp_path / "d") == languages(tmp_path / "a")
    assert english_again["dropped"] == english["dropped"] and english_again["config_hash"] == english["config_hash"]


NON_ENGLISH = tuple(range(9_500_001, 9_500_010))  # 9, as in the reproduction


@pytest.fixture(scope="module")
def mixed_corpus(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("mixed")
    pubmed_file(d / "a_english.xml", [citation(p, f"Study {p} of kinase inhibitors", abstract_text(p))
                                      for p in BASE_PMIDS[:12]])
    pubmed_file(d / "b_other.xml", [citation(p, f"Estudio {p} de inhibidores", abstract_text(p), lang=lang)
                                    for p, lang in zip(NON_ENGLISH, ["spa", "fre", "ger"] * 3, strict=True)])
    return d


@pytest.mark.parametrize("repeat", range(6))  # the stale filter dropped all 9 in 3 of 6 such runs
def test_third_run_with_keep_languages_null_keeps_the_non_english(mixed_corpus, tmp_path, repeat):
    first = run_in_process(mixed_corpus, tmp_path / "a")
    second = run_in_process(mixed_corpus, tmp_path / "b", "filter.min_words=5")
    assert first["dropped"] == second["dropped"] == {"non_english": len(NON_ENGLISH)}
    third = run_in_process(mixed_corpus, tmp_path / "c", "filter.keep_languages=null")
    kept = languages(tmp_path / "c")
    assert sum(lang != "eng" for lang in kept.values()) == len(NON_ENGLISH), f"repeat {repeat}"
    assert third["dropped"] == {} and third["counts"]["kept"] == 12 + len(NON_ENGLISH)
