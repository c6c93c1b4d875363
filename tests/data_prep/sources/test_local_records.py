"""Users' own corpora (JSONL / JSONL.gz / Parquet) and one prep run over several inputs, on real files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from common.config import ConfigError
from data_prep.parse.records_file import BadRecord, iter_record_file
from data_prep.sources import resolve_inputs
from tests.conftest import shared_path
from tests.data_prep.conftest import prep_cli, run_prep

PUBMEDQA_TEST_PMID = "7482275"  # in ../shared/data/pubmedqa/pqal_test_pmids.txt
PUBMED_PMID = "17942999"  # a record of ../shared/data/pubmed/medline16n0902_excerpt.split-a.xml.gz
BAD_LINES = ["not json", '{"id": "x1"}', "[1, 2]", '{"id": "", "text": "an abstract"}', '{"id": true, "text": "t"}']


def corpus_slice(folder: Path, n: int = 150) -> Path:
    """The first `n` lines of the real corpus, two records whose ids are PubMed's, and bad lines."""
    src = shared_path("corpus", "corpus.jsonl.gz")
    with gzip.open(src, "rt", encoding="utf-8") as f:
        lines = [next(f) for _ in range(n)]
    words = json.loads(lines[0])["text"]
    lines += [json.dumps({"id": f"pmid:{PUBMEDQA_TEST_PMID}", "text": "A copy. " + words, "source": "mine"}) + "\n",
              json.dumps({"id": f"pmid:{PUBMED_PMID}", "text": "Newer text. " + words, "title": "T",
                          "license": "CC0"}) + "\n"]
    lines += [b + "\n" for b in BAD_LINES]
    out = folder / "corpus.jsonl.gz"
    with gzip.open(out, "wt", encoding="utf-8") as f:
        f.writelines(lines)
    return out


def test_jsonl_records_keep_ids_and_bad_lines_are_counted(tmp_path):
    docs = list(iter_record_file(corpus_slice(tmp_path, n=3)))
    bad = [d for d in docs if isinstance(d, BadRecord)]
    good = [d for d in docs if not isinstance(d, BadRecord)]
    assert sorted(b.reason for b in bad) == ["missing_id", "missing_id", "missing_text", "not_an_object", "not_json"]
    assert all(b.where.startswith(str(tmp_path)) for b in bad)
    assert good[0].id.startswith("pmid:") and good[0].pmid == good[0].id[5:] and good[0].source == "drugprot"
    mine = next(d for d in good if d.id == f"pmid:{PUBMED_PMID}")
    assert (mine.title, mine.license, mine.pmid) == ("T", "CC0", PUBMED_PMID)


def test_parquet_records_and_integer_ids(tmp_path):
    p = tmp_path / "mine.parquet"
    pq.write_table(pa.Table.from_pylist([{"id": "doc-1", "text": "first text", "source": "lab"},
                                         {"id": "123", "text": "second text", "source": None},
                                         {"id": "doc-3", "text": None, "source": "lab"}]), p)
    docs = list(iter_record_file(p))
    assert [getattr(d, "id", None) for d in docs] == ["doc-1", "pmid:123", None]
    assert docs[1].source == "jsonl" and docs[1].pmid == "123" and docs[2] == BadRecord("missing_text", f"{p}:row 3")
    bad = tmp_path / "cols.parquet"
    pq.write_table(pa.Table.from_pylist([{"doc": "x"}]), bad)
    from data_prep.errors import InputFileError
    with pytest.raises(InputFileError, match="lack 'id' and 'text'"):
        list(iter_record_file(bad))


def test_source_path_takes_a_list_of_paths_and_globs(tmp_path):
    corpus = corpus_slice(tmp_path, n=2)
    pubmed, pmc = shared_path("pubmed"), shared_path("pmc", "pmc_oa")
    files = resolve_inputs({"name": "local", "path": [str(pubmed), f"{pmc}/*.nxml.gz", str(corpus), str(corpus)[:-3] + "*"]},
                           tmp_path / "cache")
    names = [f.path.name for f in files]
    assert names.count("corpus.jsonl.gz") == 1  # listed twice (a file and a glob matching it): read once
    assert "PMC3821097.nxml.gz" in names and "medline16n0902_excerpt.split-a.xml.gz" in names
    assert not any(n.endswith(".xml.gz") and n.startswith("PMC") for n in names)  # the glob chose .nxml.gz only
    assert [f.order for f in files] == list(range(len(files)))
    with pytest.raises(ConfigError, match="source.path.*empty list"):
        resolve_inputs({"name": "local", "path": []}, tmp_path / "cache")
    with pytest.raises(ConfigError, match=r"source.path.*nowhere does not exist"):
        resolve_inputs({"name": "local", "path": [str(pubmed), str(tmp_path / "nowhere")]}, tmp_path / "cache")


def test_pubmed_pmc_and_jsonl_in_one_run(tmp_path):
    """The README's path: real PubMed XML + PMC + a JSONL corpus through dedup, decontamination and shards."""
    corpus = corpus_slice(tmp_path)
    out = tmp_path / "out"
    m = run_prep(["source=local", f"source.path=[{shared_path('pubmed')},{shared_path('pmc', 'pmc_oa')},{corpus}]",
                  f"out_dir={out}", f"decontam.eval_dir={shared_path()}", "progress=false", "summary.print=false",
                  "summary.histogram=false", "tokenizer.vocab_size=2000"])
    assert m["bad_records"] == {"missing_id": 2, "missing_text": 1, "not_an_object": 1, "not_json": 1}
    assert m["counts"]["bad_records"] == 5
    assert f"pmid:{PUBMEDQA_TEST_PMID}" in m["decontaminated_by_eval_set"]["pubmedqa"]
    assert m["decontamination"]["off"] is None
    rows = [r for f in sorted((out / "documents").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids))
    by_id = {r["id"]: r for r in rows}
    assert by_id[f"pmid:{PUBMED_PMID}"]["file"] == "corpus.jsonl.gz"  # one document per PMID: the later file's
    assert {r["source"] for r in rows} >= {"pubmed", "pmc", "drugprot"}
    assert f"pmid:{PUBMEDQA_TEST_PMID}" not in by_id
    assert sum(s["tokens"] for s in m["splits"]["train"]["shards"]) > 0


def test_without_eval_data_prep_warns_loudly_and_the_manifest_says_so(tmp_path):
    corpus = corpus_slice(tmp_path, n=40)
    args = [f"source.path={corpus}", "progress=false", "summary.print=false", "summary.histogram=false",
            "tokenizer.vocab_size=600"]
    r = prep_cli([*args, f"out_dir={tmp_path / 'off'}"], env={"BIOGPT_EVAL_DATA": ""})
    assert r.returncode == 0, r.stderr[-2000:]
    warning = [line for line in r.stderr.splitlines() if "DECONTAMINATION IS OFF" in line]
    assert len(warning) == 1 and "BIOGPT_EVAL_DATA" in warning[0] and "python -m eval.data fetch" in warning[0]
    m = json.loads((tmp_path / "off" / "manifest.json").read_text())
    assert m["decontamination"]["loaded"] is False and "BIOGPT_EVAL_DATA" in m["decontamination"]["off"]
    # The env var alone turns it on: decontam.eval_dir defaults to it.
    r = prep_cli([*args, f"out_dir={tmp_path / 'on'}"], env={"BIOGPT_EVAL_DATA": str(shared_path())})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "DECONTAMINATION IS OFF" not in r.stderr
    m = json.loads((tmp_path / "on" / "manifest.json").read_text())
    assert m["decontamination"]["loaded"] is True and m["decontamination"]["off"] is None
    assert m["config"]["decontam"]["eval_dir"] == str(shared_path())
