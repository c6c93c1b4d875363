"""BC5CDR chemical-induced-disease relations, end to end from text (BioGPT's RE-BC5CDR).

Source `{title} {abstract}` -> target `the relation between {chemical} and {disease} exists; ...`.
Scoring: generated (chemical, disease) mentions -> MeSH ids through BioGPT's test entity map
(`test.entities.json`; an unknown mention becomes '-1', so the pair is a false positive) ->
(PMID, chemical id, disease id) compared with the CID relations of the official PubTator gold
file: micro P/R/F1 over all evaluated documents, as the BC5CDR evaluation kit computes it.
Documents whose gold has no relation are left out, as BioGPT's rebuild_data.py leaves them out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from tasks.base import (
    DataFileError,
    Example,
    Score,
    Task,
    TestSet,
    align,
    item_field,
    listish,
    load_json,
    require_file,
)
from tasks.metrics import micro_counts
from tasks.text import biogpt_content, join_relations, normalize_line, strip_prefix, template_pattern

RELATION = "the relation between {} and {} exists"
PATTERN = template_pattern(RELATION)
# RE-BC5CDR's postprocess.py spells "in conclusion" with a space before the comma (detokenised text).
PREFIXES = (r"(learned[0-9]+ )+", r"in conclusion ,", r"we can conclude that", r"we have that")


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """'the relation between {chemical} and {disease} exists; ...' -> [(chemical, disease)]."""
    out = []
    for sentence in re.split(r";", strip_prefix(normalize_line(text), PREFIXES)):
        m = PATTERN.match(sentence.strip())
        if m is not None:
            out.append((m.group(1).strip(), m.group(2).strip()))
    return out


def render(pairs: list[tuple[str, str]]) -> str:
    return join_relations([RELATION.format(c, d) for c, d in pairs])


def longest_mentions(ent2id: dict[str, str]) -> dict[str, str]:
    """id -> its longest mention (first one on ties): the name BioGPT writes in its targets."""
    id2ent: dict[str, str] = {}
    for mention, eid in ent2id.items():
        if eid not in id2ent or len(mention) > len(id2ent[eid]):
            id2ent[eid] = mention
    return id2ent


class BC5CDR(Task):
    name = "bc5cdr"
    layout = {"train": "biogpt/BC5CDR/raw/train.json", "val": "biogpt/BC5CDR/raw/valid.json",
              "test": "biogpt/BC5CDR/raw/test.json", "entities": "biogpt/BC5CDR/raw/test.entities.json",
              "gold": "biogpt/BC5CDR/CDR_Data/CDR.Corpus.v010516/CDR_TestSet.PubTator.txt"}

    def source(self, key: str, item: dict, path: Path) -> str:
        return f"{item.get('title', '').strip()} {item_field(item, 'abstract', path, key).strip()}".strip()

    def example(self, key: str, item: dict, path: Path) -> Example:
        # Relations name MeSH ids; the fine-tuning target writes each with a mention of that id
        # (the last one listed).
        id2chem = {v: k for k, v in listish(item["chemical2id"], "chemical2id", path, key)[0].items()} \
            if item.get("chemical2id") else {}
        id2dis = {v: k for k, v in listish(item["disease2id"], "disease2id", path, key)[0].items()} \
            if item.get("disease2id") else {}
        relations = listish(item_field(item, "relations", path, key), "relations", path, key)
        parts = [RELATION.format(id2chem.get(r["chemical"], r["chemical"]), id2dis.get(r["disease"], r["disease"]))
                 for r in relations]
        return Example(key, self.source(key, item, path), join_relations(parts))

    def biogpt_source(self, key: str, item: dict) -> str:
        return biogpt_content(item["title"], item["abstract"])

    def test_set(self, paths: Mapping[str, Path]) -> BC5CDRTest:
        return BC5CDRTest(self, paths["test"], paths["entities"], paths["gold"])


class BC5CDRTest(TestSet):
    def __init__(self, task: BC5CDR, docs: Path, entities: Path, gold: Path):
        items = load_json(docs, "BioGPT's BC5CDR test set (BC5CDR/raw/test.json)")
        ents = load_json(entities, "BioGPT's BC5CDR entity map (test.entities.json)")
        try:
            # Mentions are lower-case in the map; lower-casing the generated ones makes names case-insensitive.
            self.chem2id = {k.lower(): v for k, v in ents["chemical2id"].items()}
            self.dis2id = {k.lower(): v for k, v in ents["disease2id"].items()}
        except (KeyError, AttributeError, TypeError) as e:
            raise DataFileError(entities, "needs 'chemical2id' and 'disease2id' maps") from e
        self.gold = self._read_pubtator(require_file(gold, "BC5CDR PubTator gold (CDR_TestSet.PubTator.txt)"))
        super().__init__(task, {str(k): v for k, v in items.items()}, docs)
        self._ids = [k for k, v in self.items.items() if v.get("relations")]

    @staticmethod
    def _read_pubtator(path: Path) -> dict[str, set[tuple[str, str]]]:
        gold: dict[str, set[tuple[str, str]]] = {}
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                parts = line.rstrip("\n").split("\t")
                if len(parts) >= 4 and parts[1] == "CID":
                    gold.setdefault(parts[0], set()).add((parts[2], parts[3]))
                elif len(parts) == 4 and parts[1] != "CID":
                    raise DataFileError(f"{path}:{n}", "a 4-column line that is not a CID relation; restore the original file")
        return gold

    def ids(self) -> list[str]:
        return self._ids

    def pmids(self) -> set[str]:
        return set(self.items)

    def render(self, pmid: str) -> str:
        """The gold in BioGPT's target format (each id written as its longest mention in the document)."""
        d = self.items[pmid]
        chem, dis = longest_mentions(d["chemical2id"]), longest_mentions(d["disease2id"])
        return render([(chem[r["chemical"]], dis[r["disease"]]) for r in d["relations"]])

    def to_ids(self, pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
        return {(self.chem2id.get(c.strip().lower(), "-1"), self.dis2id.get(d.strip().lower(), "-1")) for c, d in pairs}

    def score(self, predictions: dict[str, str], ids: list[str] | None = None, source: str = "predictions") -> Score:
        ids = self.ids() if ids is None else ids
        al = align(self.name, predictions, ids, set(self.items), source)
        gold_all, pred_all, items, failed = [], [], [], 0
        for pmid, text in zip(ids, al.texts, strict=True):
            pairs = parse_pairs(text) if text is not None else []
            failed += text is not None and not pairs
            pred = self.to_ids(pairs)
            gold = self.gold.get(pmid, set())
            pred_all += [(pmid, *p) for p in pred]
            gold_all += [(pmid, *g) for g in gold]
            items.append({"id": pmid, "gold": sorted(gold), "extracted": sorted(pred), "mentions": pairs})
        c = micro_counts(gold_all, pred_all)
        return Score(self.name, {"precision": c.precision, "recall": c.recall, "f1": c.f1},
                     {"evaluated": len(ids), "missing": al.missing, "unknown_ids": al.unknown, "failed": failed,
                      "tp": c.tp, "n_pred": c.n_pred, "n_gold": c.n_gold}, items)


TASK = BC5CDR()
