"""Decontamination against the real eval sets in ../shared/data, plus generated mini layouts."""

from __future__ import annotations

import io
import json
import math
import pickle
import random
import re
import tarfile

import pytest

from common.config import ConfigError
from data_prep.document import Document
from data_prep.errors import InputFileError
from data_prep.text.decontam import (
    EVAL_ENV,
    DecontamConfig,
    EvalIndex,
    EvalUnit,
    load_eval_sets,
    merge_summaries,
    words,
)
from tests.conftest import shared_path
from tests.data_prep.conftest import prep_config


def decontam_config(values: dict) -> DecontamConfig:
    """`decontam:` of a prep config, typed and checked as `python -m data_prep` does it."""
    return prep_config(decontam=values).decontam

FILLER = ("We describe an unrelated cohort of patients treated in a regional hospital network, and report "
          "baseline characteristics, follow-up visits and the main clinical outcomes at one year.")


def pmc_doc(text: str, pmid: str | None = None, doc_id: str = "doi:10.1/test") -> Document:
    return Document(id=doc_id, text=text, source="pmc", pmid=pmid)


@pytest.fixture(autouse=True)
def no_eval_env(monkeypatch):
    """The developer's own $BIOGPT_EVAL_DATA must not leak into these tests."""
    monkeypatch.delenv(EVAL_ENV, raising=False)


@pytest.fixture(scope="module")
def real_index() -> EvalIndex:
    cfg = decontam_config({"eval_dir": None, "sources": {
        "pubmedqa": str(shared_path("pubmedqa", "pqal_test_set.json")),
        "bc5cdr": str(shared_path("biogpt", "BC5CDR", "CDR_Data", "CDR.Corpus.v010516", "CDR_TestSet.PubTator.txt")),
        "ddi": {"path": str(shared_path("biogpt", "DDI", "raw", "test.json")), "format": "ddi"},
        "hoc": str(shared_path("biogpt", "HoC", "raw", "test.tsv")),
    }})
    return load_eval_sets(cfg)


def test_pubmedqa_test_pmids_are_removed(real_index):
    truth = json.loads(shared_path("pubmedqa", "test_ground_truth.json").read_text())
    pmids = sorted(truth)[:5]
    for p in pmids:
        assert real_index.match(Document(id=f"pmid:{p}", text="x", source="pubmed", pmid=p)) == "eval:pubmedqa"
    # the PMC full text of a test article goes too (its PMID is in the JATS metadata)
    assert real_index.match(pmc_doc(FILLER, pmid=pmids[0], doc_id="pmcid:PMC1")) == "eval:pubmedqa"
    train = json.loads(shared_path("pubmedqa", "pqal_fold0_train_set.json").read_text())
    other = next(iter(train))
    assert real_index.match(Document(id=f"pmid:{other}", text=FILLER, source="pubmed", pmid=other)) is None
    removed = real_index.summary()["sets"]["pubmedqa"]["removed_by_pmid"]
    assert {f"pmid:{p}" for p in pmids} <= set(removed)


def test_pubmedqa_context_matched_by_text_without_pmid(real_index):
    data = json.loads(shared_path("pubmedqa", "pqal_test_set.json").read_text())
    item = next(iter(data.values()))
    body = "Introduction\n\n" + " ".join(item["CONTEXTS"]) + "\n\n" + item["LONG_ANSWER"] + "\n\n" + FILLER
    assert real_index.match(pmc_doc(body)) == "eval:pubmedqa"


def test_ddi_medline_document_matched_by_text(real_index):
    ddi = json.loads(shared_path("biogpt", "DDI", "raw", "test.json").read_text())
    key, item = next((k, v) for k, v in ddi.items() if k.startswith("DDI-MedLine"))
    assert not item["pmid"].isdigit()  # DDI has no PMIDs: text is the only evidence
    d = pmc_doc(f"Some title\n\n{item['abstract']}\n\n{FILLER}")
    assert real_index.match(d) == "eval:ddi"
    assert d.id in real_index.summary()["sets"]["ddi"]["removed_by_text"]


def test_hoc_abstract_matched_through_its_tokenised_sentences(real_index):
    lines = [ln.split("\t")[0] for ln in shared_path("biogpt", "HoC", "raw", "test.tsv").read_text().splitlines()
             if ln.strip()][:6]
    # the original abstract spacing: "breaks , alkali-labile" was "breaks, alkali-labile"
    abstract = re.sub(r" ([,.;:)])", r"\1", re.sub(r"\( ", "(", " ".join(lines)))
    assert abstract != " ".join(lines)
    d = Document(id="pmid:99999999", text="Title\n\n" + abstract, source="pubmed", pmid="99999999")
    assert real_index.match(d) == "eval:hoc"


def test_bc5cdr_pubtator_pmids(real_index):
    first = shared_path("biogpt", "BC5CDR", "CDR_Data", "CDR.Corpus.v010516",
                        "CDR_TestSet.PubTator.txt").read_text().split("|", 1)[0]
    assert real_index.match(Document(id=f"pmid:{first}", text=FILLER, source="pubmed", pmid=first)) == "eval:bc5cdr"
    assert real_index.summary()["sets"]["bc5cdr"]["pmids"] == 500


def test_unrelated_text_sharing_a_boilerplate_phrase_is_kept(real_index):
    data = json.loads(shared_path("pubmedqa", "pqal_test_set.json").read_text())
    words = " ".join(next(iter(data.values()))["CONTEXTS"]).split()
    phrase = " ".join(words[:20])  # one 20-word span: a few per cent of that abstract's 13-grams
    assert real_index.match(pmc_doc(f"{FILLER} {phrase} {FILLER}")) is None
    assert real_index.match(pmc_doc(FILLER)) is None


def test_default_layout_from_the_shared_folder(monkeypatch):
    monkeypatch.setenv(EVAL_ENV, str(shared_path()))
    index = load_eval_sets(DecontamConfig())
    s = index.summary()
    assert s["loaded"] and list(s["sets"]) == ["pubmedqa", "bc5cdr", "ddi", "kd_dti", "hoc", "ncbi_disease"]
    assert s["sets"]["pubmedqa"]["pmids"] == 1000  # train, dev and test: all of PQA-L
    assert s["sets"]["bc5cdr"]["pmids"] == 1500
    assert s["sets"]["kd_dti"]["pmids"] == 2159
    assert s["sets"]["ddi"]["pmids"] == 0 and s["sets"]["ddi"]["text_units"] > 800
    assert s["sets"]["hoc"]["text_units"] > 4000
    assert s["sets"]["ncbi_disease"]["pmids"] == 100  # the test split only, read from the archive
    assert index.match(Document(id="pmid:9949209", text="x", source="pubmed", pmid="9949209")) == "eval:ncbi_disease"
    # a train-split document stays (NCBI-disease train abstract 10192393)
    assert index.match(Document(id="pmid:10192393", text=FILLER, source="pubmed", pmid="10192393")) is None


# ---- generated mini layouts: formats, config, errors ----------------------------------------------


def write_layout(root):
    (root / "pubmedqa").mkdir(parents=True)
    (root / "pubmedqa" / "test_set.json").write_text(json.dumps({"111": {"CONTEXTS": ["a b c"], "LONG_ANSWER": "d"}}))
    (root / "pubmedqa" / "test_ground_truth.json").write_text(json.dumps({"112": "yes"}))
    for sub, data in [("BC5CDR", {"221": {"title": "t", "abstract": "a"}}),
                      ("DDI", {"DDI-MedLine.d1": {"abstract": " ".join(f"ddiword{i}" for i in range(30)),
                                                  "pmid": "DDI-MedLine.d1"}}),
                      ("KD-DTI", {"331": {"title": "t", "abstract": "a", "pmid": "331"}})]:
        (root / "biogpt" / sub / "raw").mkdir(parents=True)
        (root / "biogpt" / sub / "raw" / "test.json").write_text(json.dumps(data))
    (root / "biogpt" / "BC5CDR" / "raw" / "test.entities.json").write_text("{}")  # must be ignored
    (root / "corpus" / "raw").mkdir(parents=True)
    with tarfile.open(root / "corpus" / "raw" / "spyysalo+ncbi-disease.tar.gz", "w:gz") as tar:
        for split, pmid in (("train", "441"), ("test", "442")):
            data = f"{pmid}|t|A title.\n{pmid}|a|An abstract.\n{pmid}\t0\t1\tA\tSpecificDisease\tD1\n\n".encode()
            info = tarfile.TarInfo(f"spyysalo+ncbi-disease/original-data/{split}/x_corpus.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (root / "biogpt" / "HoC" / "raw").mkdir(parents=True)
    (root / "biogpt" / "HoC" / "raw" / "test.tsv").write_text(
        " ".join(f"hocword{i}" for i in range(20)) + " .\tempty\n\nshort one .\tempty\n")


def test_env_var_default_and_no_sets(tmp_path, monkeypatch):
    monkeypatch.delenv(EVAL_ENV, raising=False)
    empty = load_eval_sets(DecontamConfig())
    assert empty.empty and not empty.summary()["loaded"]
    assert "no decontamination sets were loaded" in empty.summary()["note"]
    assert empty.match(Document(id="pmid:111", text="x", source="pubmed", pmid="111")) is None

    write_layout(tmp_path)
    monkeypatch.setenv(EVAL_ENV, str(tmp_path))
    index = load_eval_sets(DecontamConfig())
    assert index.match(Document(id="pmid:112", text="x", source="pubmed", pmid="112")) == "eval:pubmedqa"
    assert index.match(Document(id="pmid:221", text="x", source="pubmed", pmid="221")) == "eval:bc5cdr"
    assert index.match(Document(id="pmid:331", text="x", source="pubmed", pmid="331")) == "eval:kd_dti"
    assert index.match(Document(id="pmid:442", text="x", source="pubmed", pmid="442")) == "eval:ncbi_disease"
    assert index.match(Document(id="pmid:441", text="x", source="pubmed", pmid="441")) is None  # train split
    ddi_text = "Title. " + " ".join(f"DDIWORD{i}" for i in range(30))
    assert index.match(pmc_doc(ddi_text)) == "eval:ddi"
    hoc_text = "x " + " ".join(f"hocword{i}" for i in range(20)) + ". y"
    assert index.match(pmc_doc(hoc_text, doc_id="doi:2")) == "eval:hoc"
    s = index.summary()
    assert s["sets"]["hoc"]["text_units_too_short"] == 1
    assert s["sets"]["bc5cdr"]["files"] == [str(tmp_path / "biogpt" / "BC5CDR" / "raw" / "test.json")]
    assert s["sets"]["pubmedqa"]["removed_by_pmid"] == ["pmid:112"]


def test_pmid_list_format(tmp_path):
    (tmp_path / "qa.txt").write_text("# demo QA set\n123\npmid:456\n\n")
    index = load_eval_sets(decontam_config({"sources": {"demo_qa": {"path": str(tmp_path / "qa.txt"),
                                                                                  "format": "pmid_list"}}}))
    assert index.match(Document(id="pmid:456", text="x", source="pubmed", pmid="456")) == "eval:demo_qa"
    assert index.match(Document(id="pmid:789", text="x", source="pubmed", pmid="789")) is None
    (tmp_path / "bad.txt").write_text("123\nPMC456\n")
    with pytest.raises(InputFileError, match=r"bad.txt: line 2"):
        load_eval_sets(decontam_config({"sources": {"pmid_list": str(tmp_path / "bad.txt")}}))


def test_missing_paths_name_the_key(tmp_path, monkeypatch):
    with pytest.raises(ConfigError) as e:
        decontam_config({"sources": {"pubmedqa": str(tmp_path / "nope.json")}})
    assert e.value.key == "decontam.sources.pubmedqa.path"
    monkeypatch.setenv(EVAL_ENV, str(tmp_path / "absent"))
    with pytest.raises(ConfigError) as e:
        decontam_config({})
    assert e.value.key == "decontam.eval_dir" and EVAL_ENV in str(e.value)
    monkeypatch.setenv(EVAL_ENV, str(tmp_path))  # exists, but without the standard layout
    with pytest.raises(ConfigError) as e:
        load_eval_sets(DecontamConfig())
    assert e.value.key == "decontam.sources.pubmedqa.path" and "list decontam.sources" in str(e.value)
    assert decontam_config({"enabled": False}).enabled is False  # off: nothing is checked


def test_relative_paths_resolve_against_eval_dir(tmp_path):
    write_layout(tmp_path)
    cfg = decontam_config({"eval_dir": str(tmp_path), "sources": {"kd": {"path": "biogpt/KD-DTI/raw",
                                                                                     "format": "kd_dti"}}})
    assert load_eval_sets(cfg).summary()["sets"]["kd"]["pmids"] == 1


def test_config_errors(tmp_path):
    write_layout(tmp_path)
    for bad, key in [({"sources": {"x": str(tmp_path)}}, "decontam.sources.x"),
                     ({"sources": {"x": {"path": str(tmp_path), "format": "squad"}}}, "decontam.sources.x.format"),
                     ({"sources": {"x": {"format": "hoc"}}}, "decontam.sources.x.path"),
                     ({"sources": {"x": {"path": str(tmp_path), "fmt": "hoc"}}}, "decontam.sources.x.fmt"),
                     ({"sources": ["a"]}, "decontam.sources"),
                     ({"ngram": 2}, "decontam.ngram"), ({"min_overlap": 0}, "decontam.min_overlap"),
                     ({"ngrams": 13}, "decontam.ngrams"), ({"match_text": "sometimes"}, "decontam.match_text")]:
        with pytest.raises(ConfigError) as e:
            decontam_config({"eval_dir": None, **bad})
        assert e.value.key == key, bad
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no \\*.tsv files") as e:
        load_eval_sets(decontam_config({"sources": {"hoc": str(tmp_path / "empty")}}))
    assert e.value.key == "decontam.sources.hoc.path"
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(InputFileError, match="broken.json"):
        load_eval_sets(decontam_config({"sources": {"ddi": str(tmp_path / "broken.json")}}))


def test_index_survives_pickling_to_worker_processes(tmp_path):
    write_layout(tmp_path)
    index = load_eval_sets(decontam_config({"eval_dir": str(tmp_path)}))
    ddi_text = " ".join(f"ddiword{i}" for i in range(30))
    assert index.match(pmc_doc(ddi_text)) == "eval:ddi"  # builds the n-gram table in this process
    copy = pickle.loads(pickle.dumps(index))
    assert copy._table is None  # string hashes are per process: rebuilt on first use
    assert copy.match(pmc_doc(ddi_text, doc_id="doi:10.1/pickled")) == "eval:ddi"
    assert copy.summary()["sets"]["ddi"]["removed_by_text"] == ["doi:10.1/pickled", "doi:10.1/test"]


def test_merge_summaries_of_tasks(tmp_path):
    write_layout(tmp_path)
    cfg = decontam_config({"eval_dir": str(tmp_path)})
    a, b = load_eval_sets(cfg), load_eval_sets(cfg)
    a.match(Document(id="pmid:112", text="x", source="pubmed", pmid="112"))
    b.match(Document(id="pmid:111", text="x", source="pubmed", pmid="111"))
    merged = merge_summaries([a.summary(), b.summary()])
    assert merged["sets"]["pubmedqa"]["removed_by_pmid"] == ["pmid:111", "pmid:112"]
    assert merge_summaries([])["loaded"] is False


def reference_text_match(units: list[str], need_fraction: float, text: str, n: int = 13) -> int | None:
    """The matching rule written the plain way (distinct word n-grams as tuples, counted per
    unit): what the array implementation must agree with."""
    def grams(w):
        return {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}

    doc = grams(words(text))
    for uid, unit in enumerate(units):  # the lowest unit id that reaches its share wins
        g = grams(unit.split(" "))
        if g and len(g & doc) >= max(1, math.ceil(need_fraction * len(g))):
            return uid
    return None


def test_array_ngram_matching_agrees_with_the_plain_rule_near_the_threshold():
    rng = random.Random(3)
    vocab = [f"w{i}" for i in range(60)]  # a small vocabulary: many shared n-grams, near misses
    unit_texts = [" ".join(rng.choice(vocab) for _ in range(rng.randrange(13, 60))) for _ in range(40)]
    idx = EvalIndex(DecontamConfig(eval_dir=None))
    idx.add_set("a", "hoc", "mem", [EvalUnit(None, t) for t in unit_texts[:20]], [])
    idx.add_set("b", "hoc", "mem", [EvalUnit(None, t) for t in unit_texts[20:]], [])
    units = [t for _, t in idx._units]
    probes = []
    for _ in range(600):  # a slice of one unit (0-100 % of it) between random words and other slices
        u = rng.choice(units).split(" ")
        a = rng.randrange(len(u))
        b = rng.randrange(a, len(u) + 1)
        probes.append(" ".join([rng.choice(vocab) for _ in range(rng.randrange(20))] + u[a:b]
                               + rng.choice(units).split(" ")[:rng.randrange(20)]))
    got = [idx._text_match(p) for p in probes]
    assert got == [reference_text_match(units, idx.cfg.min_overlap, p) for p in probes]
    assert 50 < sum(g is not None for g in got) < 550  # both outcomes well represented
    assert idx._text_match("w1 w2") is None and idx._text_match("") is None
