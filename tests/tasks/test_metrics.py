"""Metric definitions on hand-made cases with known answers."""

import math

import pytest

from tasks.metrics import (
    accuracy,
    confusion,
    f1_of,
    hard_key,
    hard_match,
    macro_f1,
    micro_counts,
    multilabel_micro_f1,
    normalize_name,
)
from tasks.pubmedqa import LABELS  # yes, no, maybe


def test_accuracy_and_macro_f1_perfect():
    gold = ["yes", "no", "maybe", "yes"]
    assert accuracy(gold, gold) == 1.0
    assert macro_f1(gold, gold, LABELS) == 1.0


def test_macro_f1_known_mix():
    gold = ["yes", "yes", "no", "maybe"]
    pred = ["yes", "no", "no", "failed"]
    # yes: P=1 R=1/2 F=2/3; no: P=1/2 R=1 F=2/3; maybe: P=0 R=0 F=0
    assert accuracy(gold, pred) == 0.5
    assert macro_f1(gold, pred, LABELS) == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)
    assert confusion(gold, pred, LABELS) == [[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]]


def test_macro_f1_matches_sklearn_definition_on_a_larger_mix():
    # Worked by hand: yes tp=3 fp=1 fn=1 -> F=0.75; no tp=1 fp=1 fn=1 -> F=0.5; maybe tp=0 fp=0 fn=1 -> 0
    gold = ["yes", "yes", "yes", "yes", "no", "no", "maybe"]
    pred = ["yes", "yes", "yes", "no", "no", "yes", "failed"]
    assert macro_f1(gold, pred, LABELS) == pytest.approx((0.75 + 0.5 + 0.0) / 3)


def test_accuracy_length_mismatch_is_an_error():
    with pytest.raises(ValueError):
        accuracy(["yes"], [])


def test_micro_counts():
    c = micro_counts([("1", "a", "b"), ("1", "c", "d"), ("2", "a", "b")], [("1", "a", "b"), ("2", "x", "y")])
    assert (c.tp, c.n_pred, c.n_gold) == (1, 2, 3)
    assert c.precision == 0.5 and c.recall == pytest.approx(1 / 3)
    assert c.f1 == pytest.approx(f1_of(0.5, 1 / 3)) == pytest.approx(0.4)
    assert micro_counts([], []).f1 == 0.0


def test_multilabel_micro_f1_ignores_unknown_labels():
    classes = ("a", "b", "empty")
    gold = [{"a"}, {"b", "a"}, {"empty"}]
    pred = [{"a"}, {"b", "zzz"}, {"a"}]  # tp=2 (a, b), fp=1 (a in 3rd), fn=2 (a in 2nd, empty)
    m = multilabel_micro_f1(gold, pred, classes)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 4)
    assert m["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 2))
    assert multilabel_micro_f1(gold, gold, classes)["f1"] == 1.0


def test_normalize_name_like_biogpt():
    assert normalize_name("cyp3a4") == "cyp3aIV"  # trailing single digit -> roman
    assert normalize_name("h12") == "h12"  # two digits: unchanged
    assert normalize_name("ace-type") == "ace"
    assert normalize_name("5-ht(2a)") == "5ht2a"


def _hk(*triples):
    return {hard_key(t) for t in triples}


def test_hard_match_perfect_and_empty_documents():
    gold = _hk(("Aspirin", "Warfarin", "effect"), ("A", "B", "mechanism"))
    assert hard_match([(gold, gold)]).f1 == 1.0
    # BioGPT: an empty prediction scores P=R=0 against a non-empty gold (and 1 against an empty one).
    hm = hard_match([(set(), gold), (set(), set())])
    assert hm.precision == 0.5 and hm.recall == 0.5 and hm.f1 == 0.5


def test_hard_match_known_mix_per_document_average():
    g1 = _hk(("a", "b", "effect"), ("c", "d", "advise"))
    p1 = _hk(("A", "B", "effect"), ("x", "y", "int"), ("z", "w", "int"), ("q", "r", "int"))  # P=1/4 R=1/2
    g2 = _hk(("e", "f", "mechanism"))
    p2 = _hk(("e", "f", "mechanism"))  # P=1 R=1
    hm = hard_match([(p1, g1), (p2, g2)])
    assert hm.precision == pytest.approx((0.25 + 1) / 2)
    assert hm.recall == pytest.approx((0.5 + 1) / 2)
    assert hm.f1 == pytest.approx((f1_of(0.25, 0.5) + 1) / 2)  # mean of per-document F1
    assert hm.macro_f1 == pytest.approx(f1_of(0.625, 0.75))
    # Ontology: 2 of 5 pooled predictions in the 3 pooled gold triples.
    assert hm.ontology_precision == pytest.approx(2 / 5) and hm.ontology_recall == pytest.approx(2 / 3)
    assert hm.documents == 2 and hm.n_pred == 5 and hm.n_gold == 3


def test_hard_match_names_case_space_and_abbreviation_insensitive():
    gold = _hk(("monoamine oxidase (MAO)", "Psoralen", "inhibitor"))
    assert hard_match([(_hk(("MAO", "psoralen", "inhibitor")), gold)]).f1 == 1.0  # abbreviation alone
    assert hard_match([(_hk(("Monoamine Oxidase", "psoralen", "inhibitor")), gold)]).f1 == 1.0  # body alone
    assert hard_match([(_hk(("monoamineoxidase", "psoralen", "inhibitor")), gold)]).f1 == 1.0  # spaces dropped
    assert hard_match([(_hk(("dopamine", "psoralen", "inhibitor")), gold)]).f1 == 0.0
    assert not math.isnan(hard_match([]).f1)
