"""Entity recognition (tasks/ner.py, bc5cdr_ner, ncbi_disease): the target form reads back, the
scoring is exact on hand-made cases, the parser never raises, the real test sets score 1.0 with gold."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

import tasks
from tasks.base import DataFileError
from tasks.ner import dictionary_predictions, norm, parse, read_text, render
from tests.conftest import shared_path

CDR = ("chemical", "disease")

# Two abstracts in PubTator, BC5CDR's mention types (offsets are not read).
PUBTATOR = """\
1|t|Cocaine and  heart attack.
1|a|Cocaine users had myocardial infarction; aspirin did not help.
1\t0\t7\tCocaine\tChemical\tD1
1\t12\t24\theart  attack\tDisease\tD2
1\t27\t34\tCocaine\tChemical\tD1
1\t45\t66\tmyocardial infarction\tDisease\tD2
1\t68\t75\taspirin\tChemical\tD3
1\tCID\tD1\tD2

2|t|A study of nothing.
2|a|No entity at all here.

"""


@pytest.fixture
def bench(tmp_path):
    p = tmp_path / "test.PubTator.txt"
    p.write_text(PUBTATOR)
    return tasks.get("bc5cdr_ner").test_set({"test": p})


def test_target_form_and_reading_back():
    text = render([("disease", "Heart  Attack"), ("chemical", "Cocaine"), ("chemical", "cocaine")], CDR)
    assert text == "chemicals: cocaine. diseases: heart attack."
    assert render([], CDR) == "chemicals: none. diseases: none."
    assert parse(text, CDR).entities == {("chemical", "cocaine"), ("disease", "heart attack")}
    assert parse("chemicals: none. diseases: none.", CDR).entities == set()
    # a mention ending in '.' survives: only the one final '.' of a section goes
    assert parse(render([("chemical", "T. chebula extr.")], CDR), CDR).entities == {("chemical", "t. chebula extr.")}


def test_gold_roundtrip_and_hand_computed_corruptions(bench):
    assert bench.ids() == ["1", "2"] and bench.pmids() == {"1", "2"}
    assert bench.render("1") == "chemicals: cocaine; aspirin. diseases: heart attack; myocardial infarction."
    assert bench.render("2") == "chemicals: none. diseases: none."
    perfect = bench.score({k: bench.render(k) for k in bench.ids()})
    assert perfect.metrics == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    structured = bench.score({k: bench.read_prediction({"entities": bench.structured(k)}) for k in bench.ids()})
    assert structured.metrics == perfect.metrics
    # gold: 4 entities (2 chemical, 2 disease). Prediction: cocaine (tp), aspirin typed as disease (fp),
    # heart attack (tp, case and spacing ignored), one invented disease in doc 2 (fp).
    s = bench.score({"1": "chemicals: COCAINE. diseases: Heart   attack; aspirin.",
                     "2": "chemicals: none. diseases: fever."})
    assert (s.counts["tp"], s.counts["n_pred"], s.counts["n_gold"]) == (2, 4, 4)
    assert s.metrics == {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    chem, dis = s.extra["per_type"]["chemical"], s.extra["per_type"]["disease"]
    assert (chem["precision"], chem["recall"]) == (1.0, 0.5)
    assert (dis["tp"], dis["n_pred"], dis["n_gold"]) == (1, 3, 2)
    assert dis["precision"] == pytest.approx(1 / 3) and dis["recall"] == 0.5 and dis["f1"] == pytest.approx(0.4)


def test_missing_documents_are_empty_predictions_and_reported(bench):
    s = bench.score({"1": bench.render("1")})
    assert s.counts["missing"] == 1 and s.extra["missing_ids"] == ["2"]
    assert s.metrics["recall"] == 1.0  # doc 2 has no gold entity: nothing lost
    s = bench.score({"2": "chemicals: none. diseases: none."})
    assert s.counts["missing"] == 1 and s.metrics == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


@pytest.mark.parametrize("text", ["", "...", ";;;", "chemicals:", "diseases: ; ; .", "chemicals chemicals",
                                  "\x00\n\t", "a" * 5000, "chemicals: x. chemicals: y.", "DISEASES:fever", "{}"])
def test_parser_never_raises(text):
    out = parse(text, CDR)
    assert isinstance(out.entities, set)


def test_malformed_generations_are_counted(bench):
    s = bench.score({"1": "learned1 learned2 the patient was fine", "2": "chemicals: cocaine; ; ."})
    assert s.counts["failed"] == 1 and s.counts["incomplete"] == 1 and s.counts["evaluated"] == 2
    assert s.counts["n_pred"] == 1  # only 'cocaine', in doc 2, where it is a false positive
    assert parse("chemicals: a. chemicals: b.", CDR).entities == {("chemical", "a")}  # a loop: first section
    assert parse("prefix text diseases:fever", CDR).entities == {("disease", "fever")}


def test_structured_prediction_lines(bench, tmp_path):
    from eval.files import read_predictions

    p = tmp_path / "pred.jsonl"
    p.write_text(json.dumps({"id": 1, "entities": [{"type": "chemical", "text": "Cocaine"}]}) + "\n"
                 + json.dumps({"id": "2", "prediction": "chemicals: none. diseases: none."}) + "\n")
    preds = read_predictions(p, bench.read_prediction)
    assert preds == {"1": [("chemical", "Cocaine")], "2": "chemicals: none. diseases: none."}
    assert bench.score(preds).counts["tp"] == 1
    p.write_text(json.dumps({"id": 1, "entities": [{"type": "gene", "text": "BRCA1"}]}) + "\n")
    with pytest.raises(DataFileError, match=r"pred.jsonl:1: entity types \['gene'\] are not types of bc5cdr_ner"):
        read_predictions(p, bench.read_prediction)
    p.write_text(json.dumps({"id": 1, "entities": "cocaine"}) + "\n")
    with pytest.raises(DataFileError, match=r'pred.jsonl:1: "entities" must be a list'):
        read_predictions(p, bench.read_prediction)


def test_files_inside_an_archive(tmp_path):
    data = PUBTATOR.encode()
    archive = tmp_path / "corpus.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("c/test/x.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    assert read_text(archive / "c" / "test" / "x.txt", "x") == PUBTATOR
    ncbi = tasks.get("ncbi_disease")
    with pytest.raises(DataFileError, match=r"corpus.tar.gz: has no member 'c/train/x.txt'"):
        ncbi.read(archive / "c" / "train" / "x.txt")
    with pytest.raises(DataFileError, match=r"nowhere.txt: missing .*task.bench_dir="):
        ncbi.read(tmp_path / "nowhere.txt")


def test_dictionary_baseline_matches_whole_words(tmp_path):
    train = tmp_path / "train.json"
    train.write_text(json.dumps({"9": {"title": "t", "abstract": "a", "relations": [],
                                       "chemical2id": {"cocaine": "D1", "ine": "-1"},
                                       "disease2id": {"myocardial infarction": "D2"}}}))
    test = tmp_path / "test.PubTator.txt"
    test.write_text(PUBTATOR)
    preds = dictionary_predictions(tasks.get("bc5cdr_ner"), {"train": train, "test": test})
    assert sorted(preds["1"]) == [("chemical", "cocaine"), ("disease", "myocardial infarction")]  # not 'ine'
    assert preds["2"] == []


@pytest.mark.parametrize(("name", "docs", "gold"), [("bc5cdr_ner", 500, 4256), ("ncbi_disease", 100, 535)])
def test_real_test_sets_read_back_from_gold(name, docs, gold):
    task = tasks.get(name)
    paths = task.paths(shared_path())
    bench = task.test_set(paths)
    assert len(bench.ids()) == docs
    s = bench.score({k: bench.render(k) for k in bench.ids()})
    assert s.metrics["f1"] == 1.0 and s.counts["n_gold"] == gold and s.counts["failed"] == 0
    s = bench.score({k: bench.read_prediction({"entities": bench.structured(k)}) for k in bench.ids()})
    assert s.metrics["f1"] == 1.0
    train = task.examples(paths["train"])
    assert len(train) == {"bc5cdr_ner": 500, "ncbi_disease": 592}[name]
    assert all(norm(e.target) == e.target and e.target.endswith(".") for e in train)
