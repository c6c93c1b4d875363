"""The demo report's keyword-rule baseline (issue 11): the demo QA label follows template phrases,
so a rule reading them must score (near) 1.0 on the generated items: the report puts it beside
the model's accuracy so the demo number is not mistaken for reasoning."""

from __future__ import annotations

import json

from train.report import keyword_rule, rule_baseline


def test_keyword_rule_solves_the_generated_demo_qa(tmp_path):
    from demo_corpus.pubmedqa import generate_demo_pubmedqa

    generate_demo_pubmedqa(tmp_path)
    test = rule_baseline(tmp_path)
    assert test["n"] == 200 and test["accuracy"] == 1.0
    train = json.loads((tmp_path / "pqal_fold0_train_set.json").read_text())
    hits = sum(keyword_rule(item) == item["final_decision"] for item in train.values())
    assert hits == len(train)


def test_keyword_rule_is_not_a_label_lookup():
    item = {"CONTEXTS": ["We asked.", "A did not differ significantly between groups (p = 0.4). "
                         "No significant change in weight."], "LABELS": ["OBJECTIVE", "RESULTS"]}
    assert keyword_rule(item) == "no"
    item["CONTEXTS"][1] = "X significantly reduced Y (p < 0.01). No significant change in body weight was observed."
    assert keyword_rule(item) == "yes"  # only the first results sentence decides
    item["CONTEXTS"][1] = "The association was inconclusive (p = 0.08)."
    assert keyword_rule(item) == "maybe"
