"""`append=true` takes every setting it is not given from the corpus's config (issue 13 follow-up):
the weekly `python -m data_prep source=... out_dir=<corpus> append=true` works for a corpus built
with any overrides, and an override that contradicts the corpus is refused naming its key."""

from __future__ import annotations

import json
import shutil

import pyarrow.parquet as pq
import pytest

from common.config import ConfigError
from data_prep.config import build_config, config_hash, hashed_config, override_keys
from data_prep.pipeline.append import append_config, corpus_config
from data_prep.pipeline.driver import run
from tests.data_prep.conftest import (
    FAST_PREP,
    abstract_text,
    citation,
    compose_prep,
    prep_cli,
    pubmed_file,
    run_prep,
)

MIN_WORDS = 30  # the corpus's filter.min_words: twice the default (15)
GEN1_PMIDS = range(9_300_001, 9_300_021)
NEW_PMIDS = range(9_300_101, 9_300_104)
SHORT_PMID = 9_300_200  # 15 <= words < 30: kept by the default filter, dropped by the corpus's
SHORT_TITLE = "Short generated study of imatinib dosing"
SHORT_ABSTRACT = abstract_text(SHORT_PMID, 16)


def _abstract(p: int) -> str:
    return abstract_text(p, 60)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    """Generation 1 built by the CLI with non-default settings (FAST_PREP and filter.min_words)."""
    root = tmp_path_factory.mktemp("append_defaults")
    gen1, gen2 = root / "gen1", root / "gen2"
    gen1.mkdir()
    gen2.mkdir()
    pubmed_file(gen1 / "pubmed26n0001.xml", [citation(p, f"Generated study {p} of kinase inhibitors", _abstract(p))
                                              for p in GEN1_PMIDS])
    pubmed_file(gen2 / "pubmed26n0002.xml",
                [*(citation(p, f"New generated study {p} of metformin", _abstract(p)) for p in NEW_PMIDS),
                 citation(SHORT_PMID, SHORT_TITLE, SHORT_ABSTRACT)])
    out = root / "corpus"
    gen1_args = ["source=local", f"source.path={gen1}", f"out_dir={out}", *FAST_PREP, f"filter.min_words={MIN_WORDS}"]
    r = prep_cli(gen1_args)
    assert r.returncode == 0, r.stderr[-3000:]
    snapshot = root / "snapshot"
    shutil.copytree(out, snapshot)
    return {"root": root, "out": out, "gen2": gen2, "snapshot": snapshot,
            "manifest": json.loads((out / "manifest.json").read_text())}


def _copy(corpus: dict, dest) -> str:
    shutil.copytree(corpus["snapshot"], dest)
    return str(dest)


def test_an_append_given_only_source_and_out_dir_uses_the_corpus_settings(corpus, tmp_path):
    assert 15 <= len(f"{SHORT_TITLE} {SHORT_ABSTRACT}".split()) < MIN_WORDS  # only the corpus's filter drops it
    out = _copy(corpus, tmp_path / "corpus")
    r = prep_cli(["source=local", f"source.path={corpus['gen2']}", f"out_dir={out}", "append=true"])
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"filter.min_words={MIN_WORDS}" in r.stdout + r.stderr  # says what it took from the corpus
    manifest = json.loads((tmp_path / "corpus" / "manifest.json").read_text())
    gen2 = manifest["generations"][1]
    assert gen2["generation"] == 2 and gen2["dropped"] == {"too_short": 1}
    ids = set(pq.read_table(tmp_path / "corpus" / "documents", columns=["id"]).column("id").to_pylist())
    assert f"pmid:{SHORT_PMID}" not in ids and {f"pmid:{p}" for p in NEW_PMIDS} <= ids
    # the corpus keeps one config: generation 1's, hash included; the tokenizer (vocab 600) is reused
    assert manifest["config"] == corpus["manifest"]["config"]
    assert manifest["config_hash"] == corpus["manifest"]["config_hash"]
    assert manifest["tokenizer"] == corpus["manifest"]["tokenizer"]


def test_an_override_that_contradicts_the_corpus_is_refused_before_anything_is_written(corpus, tmp_path):
    out = _copy(corpus, tmp_path / "corpus")
    before = sorted(p.name for p in (tmp_path / "corpus").iterdir())
    r = prep_cli(["source=local", f"source.path={corpus['gen2']}", f"out_dir={out}", "append=true",
                  "filter.min_words=20"])
    assert r.returncode == 2 and "Traceback" not in r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("data_prep: error: config key 'filter.min_words': is 20 here but 30 in the corpus")
    assert "leave it off the command line" in line
    assert json.loads((tmp_path / "corpus" / "manifest.json").read_text()) == corpus["manifest"]
    assert sorted(p.name for p in (tmp_path / "corpus").iterdir()) == before


def _append(corpus: dict, overrides: list[str]):
    args = ["source=local", f"source.path={corpus['gen2']}", f"out_dir={corpus['out']}", "append=true", *overrides]
    return build_config(compose_prep(args)), args


def test_the_command_line_overrides_decide_which_keys_the_user_set(corpus):
    # the corpus's value given again, a run key, and the tokenizer group: all accepted
    cfg, args = _append(corpus, [f"filter.min_words={MIN_WORDS}", "workers=2", "tokenizer=bpe"])
    got = append_config(cfg, args)
    assert got.filter.min_words == MIN_WORDS and got.tokenizer.vocab_size == 600 and got.workers == 2
    assert got.decontam.enabled is False and got.split.val_fraction == 0.1
    stored = corpus["manifest"]["config"]
    assert {k: v for k, v in hashed_config(got).items() if k != "source"} == \
           {k: v for k, v in stored.items() if k != "source"}
    # the default value given explicitly contradicts the corpus as much as any other
    cfg, args = _append(corpus, ["filter.min_words=15"])
    with pytest.raises(ConfigError, match=r"config key 'filter\.min_words': is 15 here but 30"):
        append_config(cfg, args)
    cfg, args = _append(corpus, ["tokenizer=pretrained", f"tokenizer.path={corpus['out'] / 'tokenizer/tokenizer.json'}"])
    with pytest.raises(ConfigError, match=r"config key 'tokenizer\.kind': is 'pretrained' here but 'bpe'"):
        append_config(cfg, args)


def test_in_process_a_key_left_at_its_default_is_taken_from_the_corpus(corpus, tmp_path):
    """`run(cfg)` without overrides: a key differing from its schema default counts as set."""
    out = tmp_path / "corpus"
    _copy(corpus, out)
    base = ["source=local", f"source.path={corpus['gen2']}", f"out_dir={out}", "append=true", "progress=false",
            "summary.print=false", "summary.histogram=false"]
    with pytest.raises(ConfigError, match=r"filter\.min_words': is 20 here but 30"):
        run_prep([*base, "filter.min_words=20"])
    assert json.loads((out / "manifest.json").read_text()) == corpus["manifest"]
    manifest = run_prep(base)  # filter.min_words=15 (the default) in the composed config: the corpus's 30 used
    assert manifest["generations"][1]["dropped"] == {"too_short": 1}
    # the same run with its overrides passed says what a command line says: nothing new now
    assert run(compose_prep(base), base) == manifest


def test_a_corpus_with_another_tokenizer_kind_lends_its_whole_tokenizer_section(tmp_path):
    out = tmp_path / "corpus"
    (out / "tokenizer").mkdir(parents=True)
    (out / "tokenizer" / "tokenizer.json").write_text("{}")  # the config checks only that it exists
    first = build_config({"source": {"name": "demo"}, "out_dir": str(out),
                          "tokenizer": {"kind": "pretrained", "path": str(out / "tokenizer" / "tokenizer.json")}})
    manifest = {"config": hashed_config(first), "tokenizer": {"path": "tokenizer/tokenizer.json"}}
    plain_append = build_config({"source": {"name": "demo"}, "out_dir": str(out), "append": True})
    got = corpus_config(plain_append, manifest, out, overrides=[f"out_dir={out}", "source=demo", "append=true"])
    assert got.tokenizer.kind == "pretrained" and got.tokenizer.path == str(out / "tokenizer" / "tokenizer.json")
    assert config_hash(got) == config_hash(first)


def test_a_key_the_corpus_does_not_record_is_refused_naming_it(tmp_path):
    cfg = build_config({"source": {"name": "demo"}, "out_dir": str(tmp_path), "append": True})
    stored = hashed_config(cfg)
    del stored["filter"]["min_words"]  # a corpus written before the key existed
    with pytest.raises(ConfigError, match=r"config key 'filter\.min_words': .* does not record it"):
        corpus_config(cfg, {"config": stored}, tmp_path, overrides=[])


def test_override_keys_reads_hydra_overrides():
    assert override_keys(["filter.min_words=3", "+dedup.near=false", "~decontam.sources", "++split.val_fraction=0.1",
                          "tokenizer=pretrained", "source=pubmed_updates", "hydra.run.dir=x", "hydra/launcher=slurm",
                          "filter.keep_languages=[eng,fre]"]) == {
        "filter.min_words", "dedup.near", "decontam.sources", "split.val_fraction", "tokenizer.kind", "source.name",
        "filter.keep_languages"}
