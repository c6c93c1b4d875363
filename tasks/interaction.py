"""What DDI and KD-DTI share: `the interaction between {drug} and {target} is {interaction}` targets,
their reading, and BioGPT's hard-match scoring (`hard_match_evaluation.py`, tasks/metrics.py).
The two task modules (ddi.py, kd_dti.py) set the files and whether the source has a title."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from tasks.base import Example, Score, Task, TestSet, align, item_field, listish
from tasks.metrics import hard_key, hard_match
from tasks.text import biogpt_content, join_relations, normalize_line, strip_prefix, template_pattern

INTERACTION = "the interaction between {} and {} is {}"
PATTERN = template_pattern(INTERACTION)


def parse_interactions(text: str) -> list[tuple[str, str, str]]:
    """'the interaction between {drug} and {target} is {interaction}; ...' -> [(drug, target, interaction)].
    The greedy groups are BioGPT's: a name containing ' and ' splits at the last ' and ' before ' is '."""
    out = []
    for sentence in re.split(r"; ", strip_prefix(normalize_line(text))):
        m = PATTERN.match(sentence)
        if m is not None:
            out.append((m.group(1).strip(), m.group(2).strip(), m.group(3).strip()))
    return out


def render(triples: list[tuple[str, str, str]]) -> str:
    """BioGPT's target: lower-cased names, '; '-separated."""
    return join_relations([INTERACTION.format(d.lower(), t.lower(), i.lower()) for d, t, i in triples])


class InteractionTask(Task):
    """DDI / KD-DTI; `title`: whether BioGPT's source has a title (KD-DTI) or is the abstract alone (DDI)."""

    title: bool = False

    def source(self, key: str, item: dict, path: Path) -> str:
        return f"{item.get('title', '').strip()} {item_field(item, 'abstract', path, key).strip()}".strip()

    def example(self, key: str, item: dict, path: Path) -> Example:
        triples = listish(item_field(item, "triples", path, key), "triples", path, key)
        parts = [INTERACTION.format(t["drug"], t["target"], t["interaction"]) for t in triples]
        return Example(key, self.source(key, item, path), join_relations(parts))

    def biogpt_source(self, key: str, item: dict) -> str:
        if self.title:
            return biogpt_content(item["title"], item["abstract"])
        return item["abstract"].strip().replace("\n", " ").lower()

    def test_set(self, paths: Mapping[str, Path]) -> InteractionTest:
        return InteractionTest(self, self.read(paths["test"]), paths["test"])


class InteractionTest(TestSet):
    def __init__(self, task: InteractionTask, items: dict[str, dict], path: Path):
        super().__init__(task, items, path)
        self._ids = [k for k, v in items.items() if v.get("triples")]

    def ids(self) -> list[str]:
        return self._ids

    def pmids(self) -> set[str]:
        # DDI's DrugBank documents carry their DDI id in this field; only numeric values are PMIDs.
        return {str(v["pmid"]) for v in self.items.values() if str(v.get("pmid") or "").isdigit()}

    def gold_triples(self, key: str) -> list[tuple[str, str, str]]:
        return [(t["drug"], t["target"], t["interaction"]) for t in self.items[key]["triples"] or []]

    def render(self, key: str) -> str:
        """The gold in BioGPT's target format (triples ordered by the drug's first position in the text)."""
        text = self.task.biogpt_source(key, self.items[key])
        return render(sorted(self.gold_triples(key), key=lambda t: text.find(t[0])))

    def score(self, predictions: dict[str, str], ids: list[str] | None = None, source: str = "predictions") -> Score:
        ids = self.ids() if ids is None else ids
        al = align(self.name, predictions, ids, set(self.items), source)
        pairs, items, failed = [], [], 0
        for key, text in zip(ids, al.texts, strict=True):
            triples = parse_interactions(text) if text is not None else []
            failed += text is not None and not triples
            pred = {hard_key(t) for t in triples}
            gold = {hard_key(t) for t in self.gold_triples(key)}
            pairs.append((pred, gold))
            items.append({"id": key, "gold": sorted(gold), "extracted": sorted(pred)})
        d = hard_match(pairs).as_dict()
        counts = {"evaluated": len(ids), "missing": al.missing, "unknown_ids": al.unknown, "failed": failed,
                  "n_pred": d.pop("n_pred"), "n_gold": d.pop("n_gold")}
        d.pop("documents")
        return Score(self.name, d, counts, items)
