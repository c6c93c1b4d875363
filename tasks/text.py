"""Reading generated text the way BioGPT's `examples/*/postprocess.py` scripts do, and the pieces
of its target wording that several tasks share (described in docs/eval.md).

One output per line, a trailing "." dropped, everything up to the first matching prefix (learned
prompt tokens, "we can conclude that", ...) dropped, then the task's own pattern (in its module).
Only differences from BioGPT: newlines inside a prediction become spaces (BioGPT's outputs are
one line each), and answers and labels are lower-cased (BioGPT's targets are lower-case; another
model may write "Yes").
"""

from __future__ import annotations

import re

# The order matters: BioGPT strips at the first pattern that occurs anywhere in the line.
PREFIXES = (r"(learned[0-9]+ )+", r"we can conclude that", r"we have that", r"in conclusion,")
FAILED = "failed"  # the answer of a prediction its task's pattern does not match
NO_RELATION = "there is no relation."  # the fine-tuning target of a document without relations


def normalize_line(text: str) -> str:
    """One generated output as BioGPT reads it: a single stripped line without its final '.'."""
    line = " ".join(text.splitlines()).strip()
    return line[:-1] if line.endswith(".") else line


def strip_prefix(line: str, prefixes: tuple[str, ...] = PREFIXES) -> str:
    for p in prefixes:
        if re.search(p, line) is not None:
            return re.split(p, line)[-1].strip()
    return line


def answer_after(text: str, prefix: str) -> str:
    """PubMedQA / HoC: what follows `prefix` (searched anywhere), lower-cased; 'failed' when absent."""
    m = re.search(re.escape(prefix) + "(.*)", strip_prefix(normalize_line(text)))
    return m.group(1).strip().lower() if m is not None else FAILED


def template_pattern(template: str) -> re.Pattern:
    """'the relation between {} and {} exists' -> a regex with one greedy group per '{}' (BioGPT's)."""
    return re.compile("(.*)".join(re.escape(part) for part in template.split("{}")))


def join_relations(parts: list[str]) -> str:
    """Relation sentences as one target: '; '-separated, final '.'."""
    return "; ".join(parts) + "." if parts else NO_RELATION


def biogpt_content(title: str, abstract: str) -> str:
    """BioGPT's source text: title and abstract joined with '. ' unless the title ends in punctuation."""
    sep = " " if re.search(r"\W$", title) else ". "
    return (title + sep + abstract).lower()
