"""The prep pipeline end to end: the acceptance interface on real files, byte-identical outputs
whatever the workers / task count, SIGKILL + resume, config validation, out_dir protection."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf

from common.atomic import is_temp
from common.config import ConfigError
from data_prep.config import build_config
from data_prep.document import Deletion
from data_prep.errors import PrepError
from data_prep.parse.pubmed import iter_pubmed
from data_prep.pipeline.driver import run
from data_prep.pipeline.markers import sha256_file
from data_prep.tokens.shards import TokenShards
from data_prep.tokens.tokenizer import load_tokenizer
from tests.conftest import ROOT, shared_path
from tests.data_prep.conftest import (
    BASE_PMIDS,
    REVISED_PMID,
    REVISED_TITLE,
    TRUNCATED_PMIDS,
    abstract_text,
    citation,
    compose_prep,
    pubmed_file,
    write_generated_pubmed,
    write_hostile,
    write_truncated_gzip,
)

# Small and fast: a tiny vocabulary, several shards per split so shard boundaries are exercised.
FAST = ["tokenizer.vocab_size=600", "shards.max_tokens=20000", "split.val_fraction=0.1", "progress=false",
        "summary.histogram=false", "summary.print=false"]
# The corpora below link the real files from ../shared/data: links out of source.path are read only
# when asked (tests/data_prep/sources/test_sources.py checks the default).
LINKS = "source.follow_symlinks=true"


def overrides_to_dict(overrides: list[str]) -> dict:
    return OmegaConf.to_container(compose_prep(overrides), resolve=True)


def run_overrides(overrides: list[str]) -> dict | None:
    return run(overrides_to_dict(overrides))


def _pythonpath() -> str:
    return os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)


def cli(args: list[str], env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "data_prep", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": _pythonpath(), **(env or {})}, timeout=300, **kw)


def output_bytes(out_dir: Path) -> dict[str, str]:
    """sha256 of every output that must be byte-identical (manifest, documents, tokenizer, shards)."""
    files = [out_dir / "manifest.json", out_dir / "tokenizer" / "tokenizer.json"]
    files += sorted((out_dir / "documents").glob("*.parquet")) + sorted((out_dir / "shards").glob("*"))
    return {str(p.relative_to(out_dir)): sha256_file(p) for p in files}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Every real PubMed and PMC file (symlinked), generated baseline+update files, a hostile file."""
    d = tmp_path_factory.mktemp("corpus")
    for sub in ("pubmed", "pmc/pmc_oa", "pmc/publisher_jats"):
        src = shared_path(*sub.split("/"))
        for p in sorted(src.iterdir()):
            if p.name != "PROVENANCE.md":
                (d / f"{sub.replace('/', '_')}__{p.name}").symlink_to(p)
    write_generated_pubmed(d / "generated")
    write_hostile(d / "zz_billion_laughs.xml")
    return d


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory) -> Path:
    """Generated baseline+update, a few real PubMed and JATS files, a hostile file: quick to run."""
    d = tmp_path_factory.mktemp("small")
    for sub, name in [("pubmed", "pubmedsample_2019.split-a.xml.gz"), ("pubmed", "biopython_pubmed4.xml"),
                      ("pubmed", "eutils_efetch.pubmedbook.xml"), ("pmc/pmc_oa", "PMC3747765.nxml.gz"),
                      ("pmc/pmc_oa", "pone.0046493.nxml"), ("pmc/publisher_jats", "elife00240.xml"),
                      ("pmc/publisher_jats", "plos_journal.pmed.0040303.xml")]:
        (d / name).symlink_to(shared_path(*sub.split("/"), name))
    write_generated_pubmed(d / "generated")
    write_hostile(d / "zz_billion_laughs.xml")
    write_truncated_gzip(d / "zz_truncated.xml.gz")
    return d


@pytest.fixture(scope="module")
def small_reference(small_corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("small_ref") / "out"
    run_overrides([f"source.path={small_corpus}", LINKS, f"out_dir={out}", *FAST])
    return out


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory) -> Path:
    """The acceptance interface, as a user runs it (subprocess, 2 workers)."""
    out = tmp_path_factory.mktemp("ref") / "out"
    r = cli([f"source.path={corpus}", LINKS, f"out_dir={out}", "workers=2", *FAST[:-2]])
    assert r.returncode == 0, r.stderr[-3000:]
    assert "data_prep summary" in r.stdout  # the end-of-run summary is printed
    return out


@pytest.mark.slow
def test_acceptance_interface_on_real_files(reference, corpus):
    out = reference
    manifest = json.loads((out / "manifest.json").read_text())
    for key in ("format_version", "config_hash", "tokenizer", "dtype", "splits", "inputs", "counts", "dropped",
                "decontaminated_ids", "quarantined"):
        assert key in manifest
    assert manifest["dtype"] == "uint16"
    # inputs: every file with size and checksum; the hostile file quarantined with its reason
    assert len(manifest["inputs"]) == len([p for p in corpus.rglob("*") if p.is_file() or p.is_symlink()])
    assert all(len(i["sha256"]) == 64 and i["size"] > 0 for i in manifest["inputs"])
    assert [Path(q["path"]).name for q in manifest["quarantined"]] == ["zz_billion_laughs.xml"]
    assert manifest["quarantined"][0]["reason"]
    # documents
    table = pq.read_table(out / "documents")
    assert {"id", "text", "source", "license", "pmid", "pmcid", "doi", "year", "journal", "language",
            "publication_types", "split"} <= set(table.column_names)
    rows = table.to_pylist()
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) == manifest["counts"]["kept"]
    assert all(i.startswith(("pmid:", "pmcid:PMC", "doi:", "sha1:")) for i in ids)
    assert any(i.startswith("pmcid:PMC") for i in ids) and sum(i.startswith("pmid:") for i in ids) > 300
    assert all(r["text"].strip() and r["source"] in ("pubmed", "pmc") for r in rows)
    assert any(r["license"] for r in rows if r["source"] == "pmc")
    # deletions and revisions (load order: baseline, update): deleted PMIDs gone, latest version kept
    deleted = {f"pmid:{rec.pmid}" for p in corpus.rglob("*.xml*") if "pubmed" in p.name and "billion" not in p.name
               for rec in iter_pubmed(p) if isinstance(rec, Deletion)}
    assert f"pmid:{BASE_PMIDS[3]}" in deleted and len(deleted) >= 5
    assert not deleted & set(ids)
    revised = [r for r in rows if r["id"] == f"pmid:{REVISED_PMID}"]
    assert len(revised) == 1 and revised[0]["title"] == REVISED_TITLE and revised[0]["version"] == 2
    assert "pmid:9000100" in ids
    # non-English dropped by default, unless its abstract is English (filter.keep_english_abstract)
    assert all(r["language"] in ("", "eng") or "English Abstract" in r["publication_types"]
               for r in rows if r["source"] == "pubmed")
    assert manifest["dropped"].get("non_english", 0) + manifest["dropped"].get("language", 0) > 0 or any(
        "lang" in k or "english" in k for k in manifest["dropped"])
    # tokenizer + shards: consistent with the manifest and the documents
    tok = manifest["tokenizer"]
    assert sha256_file(out / tok["path"]) == tok["sha256"]
    assert (tok["bos_id"], tok["pad_id"], tok["eos_id"], tok["unk_id"]) == (0, 1, 2, 3)
    n_split = {s: sum(r["split"] == s for r in rows) for s in ("train", "val")}
    for split in ("train", "val"):
        sh = TokenShards.from_manifest(out, split)
        assert sh.num_documents == n_split[split] == manifest["splits"][split]["documents"]
        assert sh.num_tokens == manifest["splits"][split]["tokens"]
        for s in manifest["splits"][split]["shards"]:
            assert sha256_file(out / s["bin"]) == s["sha256"]
    train = TokenShards.from_manifest(out, "train")
    assert train.num_shards > 1
    t = load_tokenizer(out / tok["path"])
    first_train = next(r for r in rows if r["split"] == "train")
    doc0 = train.document(0)
    assert doc0[-1] == 2 and t.decode(doc0[:-1].tolist()).strip() == first_train["text"].strip()
    assert (out / "doc_lengths.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.rglob("*.tmp")) and not [p for p in out.rglob("*") if is_temp(p)]


@pytest.mark.slow
def test_outputs_identical_for_workers_and_task_count(small_reference, small_corpus, tmp_path):
    base = [f"source.path={small_corpus}", LINKS, *FAST]
    expected = output_bytes(small_reference)
    assert len([k for k in expected if k.endswith(".bin")]) > 3
    two = tmp_path / "w2"
    run_overrides([*base, f"out_dir={two}", "workers=2", "shards.processes=2"])
    assert output_bytes(two) == expected
    three = tmp_path / "t3"
    for i in range(3):  # a Slurm array of 3 map tasks, then the reduce
        assert run_overrides([*base, f"out_dir={three}", "stage=map", "task.count=3", f"task.index={i}"]) is None
        if i < 2:
            with pytest.raises(PrepError, match="no finished map output"):
                run_overrides([*base, f"out_dir={three}", "stage=reduce"])
    run_overrides([*base, f"out_dir={three}", "stage=reduce"])
    assert output_bytes(three) == expected


def test_a_file_failing_mid_stream_is_quarantined_whole(small_reference):
    manifest = json.loads((small_reference / "manifest.json").read_text())
    reasons = {Path(q["path"]).name: q["reason"] for q in manifest["quarantined"]}
    assert set(reasons) == {"zz_truncated.xml.gz", "zz_billion_laughs.xml"}
    assert "gzip" in reasons["zz_truncated.xml.gz"]
    ids = set(pq.read_table(small_reference / "documents", columns=["id"]).column("id").to_pylist())
    assert not {f"pmid:{p}" for p in TRUNCATED_PMIDS} & ids  # records read before the error are discarded too
    assert f"pmid:{BASE_PMIDS[0]}" in ids


def _run_until_paused(args: list[str], pause_at: str) -> None:
    p = subprocess.Popen([sys.executable, "-m", "data_prep", *args], cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True,
                         env={**os.environ, "PYTHONPATH": _pythonpath(), "DATA_PREP_PAUSE_AT": pause_at})
    try:
        for line in p.stdout:  # type: ignore[union-attr]
            if f"paused at {pause_at}" in line:
                break
        else:
            pytest.fail(f"the run ended before reaching {pause_at} (rc={p.wait()})")
    finally:
        os.killpg(p.pid, signal.SIGKILL)  # the run and its worker processes, mid-stage
        p.wait()
    assert p.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_sigkill_mid_stage_then_resume_is_byte_identical(small_reference, small_corpus, tmp_path):
    out = tmp_path / "killed"
    args = [f"source.path={small_corpus}", LINKS, f"out_dir={out}", "workers=2", *FAST]
    _run_until_paused(args, "map:3")  # some per-file outputs exist, others are being written
    done = list((out / "work" / "map").glob("*.done"))
    assert 3 <= len(done) < len(list(small_corpus.rglob("*.xml*"))) and not (out / "manifest.json").exists()
    _run_until_paused(args, "shard")  # resumes the map, merges, then dies mid-tokenization
    assert list((out / "shards").glob("*.bin")) and not (out / "work" / "shards.json.done").exists()
    run_overrides(args)
    assert output_bytes(out) == output_bytes(small_reference)
    ids = pq.read_table(out / "documents", columns=["id"]).column("id").to_pylist()
    assert len(ids) == len(set(ids))


def test_bad_config_value_fails_at_once_naming_the_key(tmp_path):
    out = tmp_path / "out"
    r = cli([f"source.path={tmp_path}", f"out_dir={out}", "shards.max_tokens=-5"])
    assert r.returncode != 0 and "shards.max_tokens" in r.stderr
    assert not (out / "work").exists()  # no work started
    assert not out.exists()  # nor anything else written (Hydra's .hydra/ included)
    base = overrides_to_dict([f"source.path={tmp_path}", f"out_dir={out}"])
    for key, value in [("workers", 0), ("stage", "mapp"), ("split", {"val_fraction": 1.5}),
                       ("documents", {"compression": "lz5"}), ("tokenizer", {"kind": "bpe", "vocab_size": 3}),
                       ("filter", {"min_chars": -1}), ("jats", {"include_tables": "maybe"}), ("typo_key", 1)]:
        bad = {**base, key: value}
        with pytest.raises(ConfigError) as e:
            build_config(bad)
        assert key in str(e.value)
    with pytest.raises(ConfigError, match="task.index"):
        build_config({**base, "stage": "map", "task": {"index": 3, "count": 3}})


def test_rerun_with_another_config_is_refused(tmp_path):
    d = tmp_path / "in"
    write_generated_pubmed(d)
    out = tmp_path / "out"
    base = [f"source.path={d}", f"out_dir={out}", *FAST]
    first = run_overrides(base)
    assert first["counts"]["kept"] == len(BASE_PMIDS)  # 40 - 1 deleted + 1 new; the revision replaces
    assert run_overrides(base)["config_hash"] == first["config_hash"]  # same config: resumes (all done)
    with pytest.raises(PrepError, match="another config"):
        run_overrides([*base, "split.val_fraction=0.2"])
    again = run_overrides([*base, "split.val_fraction=0.2", "overwrite=true"])
    assert again["config_hash"] != first["config_hash"]


def test_adding_data_never_moves_a_document_between_splits(tmp_path):
    d = tmp_path / "in"
    write_generated_pubmed(d)
    a = run_overrides([f"source.path={d}", f"out_dir={tmp_path / 'a'}", *FAST, "split.val_fraction=0.3"])
    more = [citation(9_100_000 + i, f"Added study {i} on aspirin", abstract_text(9_100_000 + i)) for i in range(30)]
    pubmed_file(d / "extra.xml", more)
    # the second run also loads the first run's tokenizer instead of training one
    fast = [o for o in FAST if not o.startswith("tokenizer.")]
    b = run_overrides([f"source.path={d}", f"out_dir={tmp_path / 'b'}", *fast, "split.val_fraction=0.3",
                       "tokenizer=pretrained", f"tokenizer.path={tmp_path / 'a' / 'tokenizer' / 'tokenizer.json'}"])
    assert b["counts"]["kept"] == a["counts"]["kept"] + 30
    assert b["tokenizer"] == a["tokenizer"]
    split_a, split_b = (_splits(tmp_path / x / "documents") for x in ("a", "b"))
    assert split_a and all(split_b[i] == s for i, s in split_a.items())
    assert {"train", "val"} <= set(split_a.values())


def _splits(folder: Path) -> dict[str, str]:
    t = pq.read_table(folder, columns=["id", "split"]).to_pydict()
    return dict(zip(t["id"], t["split"], strict=True))


def test_non_english_kept_when_configured(tmp_path):
    src = shared_path("pubmed", "pubmedsample_2019.split-a.xml.gz")
    d = tmp_path / "in"
    d.mkdir()
    (d / src.name).symlink_to(src)
    strict = run_overrides([f"source.path={d}", LINKS, f"out_dir={tmp_path / 'a'}", *FAST, "rejects=true",
                            "filter.keep_english_abstract=false"])
    rejects = [json.loads(line) for f in (tmp_path / "a" / "rejects").glob("*.jsonl") for line in f.read_text().splitlines()]
    by_reason = {r: sum(x["reason"] == r for x in rejects) for r in strict["dropped"]}
    assert by_reason == strict["dropped"] and by_reason.get("non_english", 0) > 0
    langs_strict = pq.read_table(tmp_path / "a" / "documents", columns=["language"]).column("language").to_pylist()
    assert all(lang in ("", "eng") for lang in langs_strict)
    # The default keeps non-English records whose title and abstract are English ("English Abstract").
    default = run_overrides([f"source.path={d}", LINKS, f"out_dir={tmp_path / 'b'}", *FAST])
    rows = pq.read_table(tmp_path / "b" / "documents", columns=["language", "publication_types"]).to_pylist()
    foreign = [r for r in rows if r["language"] not in ("", "eng")]
    assert foreign and all("English Abstract" in r["publication_types"] for r in foreign)
    assert default["counts"]["kept"] == strict["counts"]["kept"] + len(foreign)
    keep = run_overrides([f"source.path={d}", LINKS, f"out_dir={tmp_path / 'c'}", *FAST, "filter.keep_languages=null"])
    assert "non_english" not in keep["dropped"] and keep["counts"]["kept"] >= default["counts"]["kept"]


def test_demo_source_is_decontaminated_against_its_qa_set(tmp_path):
    out = tmp_path / "demo"
    m = run_overrides(["source=demo", "source.n_abstracts=200", "source.n_fulltext=4", f"out_dir={out}", *FAST])
    qa = json.loads((out / "cache" / "demo_pubmedqa" / "ori_pqal.json").read_text())
    assert qa
    removed = set(m["decontaminated_by_eval_set"]["demo_pubmedqa"])
    assert {f"pmid:{p}" for p in qa} <= removed  # every QA abstract is in the demo corpus: all removed
    ids = set(pq.read_table(out / "documents", columns=["id"]).column("id").to_pylist())
    pmids = set(pq.read_table(out / "documents", columns=["pmid"]).column("pmid").to_pylist())
    assert not ids & removed and not pmids & set(qa)
    assert m["counts"]["decontaminated"] == len(removed) > 0
    assert m["quarantined"]  # the demo's deliberately broken files
    assert m["splits"]["val"]["documents"] > 0


@pytest.mark.slow
def test_documents_parts_written_in_parallel_are_the_same_bytes(small_reference, small_corpus, tmp_path):
    base = [f"source.path={small_corpus}", LINKS, *FAST, "documents.rows_per_file=7"]
    outs = {}
    for w in (1, 2):
        outs[w] = tmp_path / f"w{w}"
        run_overrides([*base, f"out_dir={outs[w]}", f"workers={w}"])
    parts = {w: {p.name: sha256_file(p) for p in sorted((o / "documents").glob("*.parquet"))} for w, o in outs.items()}
    assert len(parts[1]) > 5 and parts[1] == parts[2]
    m = json.loads((outs[2] / "manifest.json").read_text())
    assert [d["rows"] for d in m["documents"]][:-1] == [7] * (len(m["documents"]) - 1)
    # the same rows, in the same order, as the one-part reference
    assert pq.read_table(outs[2] / "documents").equals(pq.read_table(small_reference / "documents"))


def test_changed_eval_sets_redo_the_map_and_a_stale_reduce_is_refused(tmp_path):
    inputs = tmp_path / "in"
    write_generated_pubmed(inputs)
    evals = tmp_path / "eval"
    evals.mkdir()
    (evals / "ids.txt").write_text("999999\n")
    base = [f"source.path={inputs}", f"out_dir={tmp_path / 'out'}", *FAST]

    def run_with_evals(extra: list[str]) -> dict | None:
        cfg = overrides_to_dict([*base, *extra])
        cfg["decontam"]["sources"] = {"held_out": {"path": str(evals), "format": "pmid_list"}}
        return run(cfg)

    first = run_with_evals([])
    assert first["counts"]["decontaminated"] == 0
    victim = BASE_PMIDS[0]
    (evals / "ids.txt").write_text(f"{victim}\n")  # the eval set now names a corpus document
    with pytest.raises(PrepError, match="made by other evaluation sets; rerun the map stage"):
        run_with_evals(["stage=reduce"])
    again = run_with_evals([])  # stage=all redoes the map outputs checked against the old sets
    assert again["decontaminated_by_eval_set"] == {"held_out": [f"pmid:{victim}"]}
    assert again["counts"]["kept"] == first["counts"]["kept"] - 1
