"""BioGPT's output parsing: prefixes, trailing period, answer and relation patterns."""

from tasks.bc5cdr import parse_pairs, render
from tasks.interaction import parse_interactions
from tasks.interaction import render as render_interactions
from tasks.pubmedqa import ANSWER_PREFIX, answer_of
from tasks.text import answer_after, template_pattern


def test_answer_extraction_follows_biogpt():
    def extract_answer(text):
        return answer_after(text, ANSWER_PREFIX)

    assert extract_answer(f"{ANSWER_PREFIX} yes.") == "yes"
    assert extract_answer(f"learned1 learned2 learned3 {ANSWER_PREFIX} maybe") == "maybe"
    assert extract_answer(f"we can conclude that {ANSWER_PREFIX} no.") == "no"
    assert extract_answer(f"{ANSWER_PREFIX.capitalize()} Yes.") == "failed"  # case-sensitive phrase
    assert extract_answer(f"{ANSWER_PREFIX} Yes.") == "yes"  # answer lower-cased
    assert extract_answer("no idea") == "failed"
    assert extract_answer(ANSWER_PREFIX.replace(" context", "\ncontext") + " no.") == "no"  # one line


def test_cdr_pairs_split_on_semicolons():
    text = "the relation between cocaine and myocardial infarction exists; the relation between a and b exists."
    assert parse_pairs(text) == [("cocaine", "myocardial infarction"), ("a", "b")]
    assert parse_pairs(render([("x", "y")])) == [("x", "y")]
    assert parse_pairs("nothing here") == []
    assert parse_pairs("in conclusion , the relation between p and q exists.") == [("p", "q")]  # RE-BC5CDR's prefix


def test_interactions_greedy_like_biogpt():
    text = render_interactions([("Aspirin", "Warfarin", "Effect"), ("a", "b", "int")])
    assert text == "the interaction between aspirin and warfarin is effect; the interaction between a and b is int."
    assert parse_interactions(text) == [("aspirin", "warfarin", "effect"), ("a", "b", "int")]
    # BioGPT's greedy groups: a drug named "x and y" splits at the last " and ".
    assert parse_interactions("the interaction between x and y and z is advise") == [("x and y", "z", "advise")]
    assert parse_interactions("in conclusion, the interaction between p and q is int.") == [("p", "q", "int")]


def test_templates_become_biogpts_patterns():
    m = template_pattern("the relation between {} and {} exists").match("the relation between a and b and c exists")
    assert m is not None and m.groups() == ("a and b", "c")  # greedy, as BioGPT's (.*) groups
    m = template_pattern("a {} b (c) {}").match("a x b (c) y")  # regex characters in the wording are literal
    assert m is not None and m.groups() == ("x", "y")


def test_pubmedqa_bare_labels_are_accepted():
    assert answer_of("Yes") == "yes" and answer_of(" maybe.\n") == "maybe"
    assert answer_of(f"{ANSWER_PREFIX} no.") == "no"
    assert answer_of("yes, probably") == "failed"
