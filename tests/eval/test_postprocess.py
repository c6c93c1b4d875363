"""BioGPT's output parsing: prefixes, trailing period, answer and relation patterns."""

from eval.postprocess import (
    extract_answer,
    parse_cdr_pairs,
    parse_interactions,
    render_cdr,
    render_interactions,
)


def test_answer_extraction_follows_biogpt():
    assert extract_answer("the answer to the question given the context is yes.") == "yes"
    assert extract_answer("learned1 learned2 learned3 the answer to the question given the context is maybe") == "maybe"
    assert extract_answer("we can conclude that the answer to the question given the context is no.") == "no"
    assert extract_answer("The answer to the question given the context is Yes.") == "failed"  # case-sensitive phrase
    assert extract_answer("the answer to the question given the context is Yes.") == "yes"  # answer lower-cased
    assert extract_answer("no idea") == "failed"
    assert extract_answer("the answer to the question given the\ncontext is no.") == "no"  # one line


def test_cdr_pairs_split_on_semicolons():
    text = "the relation between cocaine and myocardial infarction exists; the relation between a and b exists."
    assert parse_cdr_pairs(text) == [("cocaine", "myocardial infarction"), ("a", "b")]
    assert parse_cdr_pairs(render_cdr([("x", "y")])) == [("x", "y")]
    assert parse_cdr_pairs("nothing here") == []


def test_interactions_greedy_like_biogpt():
    text = render_interactions([("Aspirin", "Warfarin", "Effect"), ("a", "b", "int")])
    assert text == "the interaction between aspirin and warfarin is effect; the interaction between a and b is int."
    assert parse_interactions(text) == [("aspirin", "warfarin", "effect"), ("a", "b", "int")]
    # BioGPT's greedy groups: a drug named "x and y" splits at the last " and ".
    assert parse_interactions("the interaction between x and y and z is advise") == [("x and y", "z", "advise")]
    assert parse_interactions("in conclusion, the interaction between p and q is int.") == [("p", "q", "int")]


def test_pubmedqa_bare_labels_are_accepted():
    from eval.pubmedqa import answer_of

    assert answer_of("Yes") == "yes" and answer_of(" maybe.\n") == "maybe"
    assert answer_of("the answer to the question given the context is no.") == "no"
    assert answer_of("yes, probably") == "failed"
