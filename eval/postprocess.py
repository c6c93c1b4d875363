"""Turning generated text back into answers, labels and triples, the way BioGPT's scripts do.

Mirrors `examples/*/postprocess.py` of microsoft/BioGPT (described in docs/eval.md): one output
per line, a trailing "." dropped, everything up to the first matching "prefix" (learned prompt
tokens, "we can conclude that", ...) dropped, then a task-specific pattern. Only differences:
newlines inside a prediction become spaces (BioGPT's outputs are one line each), and answers
and labels are lower-cased (BioGPT's targets are lower-case; another model may write "Yes").
"""

from __future__ import annotations

import re

# The order matters: BioGPT strips at the first pattern that occurs anywhere in the line.
PREFIXES = (r"(learned[0-9]+ )+", r"we can conclude that", r"we have that", r"in conclusion,")
# RE-BC5CDR's script spells the last one with a space before the comma (detokenised text).
BC5CDR_PREFIXES = (r"(learned[0-9]+ )+", r"in conclusion ,", r"we can conclude that", r"we have that")

QA_PATTERN = re.compile(r"the answer to the question given the context is(.*)")
HOC_PATTERN = re.compile(r"the type of this document is(.*)")
CDR_PATTERN = re.compile(r"the relation between (.*) and (.*) exists")
INTERACTION_PATTERN = re.compile(r"the interaction between (.*) and (.*) is (.*)")

FAILED = "failed"


def normalize_line(text: str) -> str:
    """One generated output as BioGPT reads it: a single stripped line without its final '.'."""
    line = " ".join(text.splitlines()).strip()
    return line[:-1] if line.endswith(".") else line


def strip_prefix(line: str, prefixes: tuple[str, ...] = PREFIXES) -> str:
    for p in prefixes:
        if re.search(p, line) is not None:
            return re.split(p, line)[-1].strip()
    return line


def extract_answer(text: str, pattern: re.Pattern = QA_PATTERN) -> str:
    """PubMedQA / HoC: what follows the answer phrase, lower-cased; 'failed' when it is absent."""
    m = pattern.search(strip_prefix(normalize_line(text)))
    return m.group(1).strip().lower() if m is not None else FAILED


def parse_cdr_pairs(text: str) -> list[tuple[str, str]]:
    """BC5CDR: 'the relation between {chemical} and {disease} exists; ...' -> [(chemical, disease)]."""
    out = []
    for sentence in re.split(r";", strip_prefix(normalize_line(text), BC5CDR_PREFIXES)):
        m = CDR_PATTERN.match(sentence.strip())
        if m is not None:
            out.append((m.group(1).strip(), m.group(2).strip()))
    return out


def parse_interactions(text: str) -> list[tuple[str, str, str]]:
    """DDI / KD-DTI: 'the interaction between {drug} and {target} is {interaction}; ...'
    -> [(drug, target, interaction)]. The greedy groups are BioGPT's: a name containing ' and '
    splits at the last ' and ' before ' is '."""
    out = []
    for sentence in re.split(r"; ", strip_prefix(normalize_line(text))):
        m = INTERACTION_PATTERN.match(sentence)
        if m is not None:
            out.append((m.group(1).strip(), m.group(2).strip(), m.group(3).strip()))
    return out


# Renderers: BioGPT's target sequences (rebuild_data.py), used for prompts' targets and in tests.
def render_answer(label: str) -> str:
    return f"the answer to the question given the context is {label}."


def render_hoc(labels: str) -> str:
    return f"the type of this document is {labels}."


def render_cdr(pairs: list[tuple[str, str]]) -> str:
    return "; ".join(f"the relation between {c} and {d} exists" for c, d in pairs) + "."


def render_interactions(triples: list[tuple[str, str, str]]) -> str:
    return "; ".join(f"the interaction between {d.lower()} and {t.lower()} is {i.lower()}"
                     for d, t, i in triples) + "."
