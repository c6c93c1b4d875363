"""End-to-end relation extraction (BC5CDR, DDI, KD-DTI) scored from generated text as BioGPT does.

- BC5CDR: generated (chemical, disease) mentions -> MeSH ids through BioGPT's test entity map
  (`test.entities.json`; an unknown mention becomes '-1', so the pair is a false positive) ->
  (PMID, chemical id, disease id) compared with the CID relations of the official PubTator gold
  file: micro P/R/F1 over all evaluated documents, as the BC5CDR evaluation kit computes it.
- DDI, KD-DTI: BioGPT's hard_match_evaluation.py (`metrics.hard_match`).

Documents whose gold has no relation are left out, as BioGPT's rebuild_data.py leaves them out
of its test input (none of the three shipped test files has one).
"""

from __future__ import annotations

import re
from pathlib import Path

from eval.benchmark import Score, align
from eval.errors import DataFileError
from eval.files import load_json, require_file
from eval.metrics import hard_key, hard_match, micro_counts
from eval.postprocess import parse_cdr_pairs, parse_interactions, render_cdr, render_interactions


def _content(title: str, abstract: str) -> str:
    """BioGPT's source text: title and abstract joined with '. ' unless the title ends in punctuation."""
    sep = " " if re.search(r"\W$", title) else ". "
    return (title + sep + abstract).lower()


def longest_mentions(ent2id: dict[str, str]) -> dict[str, str]:
    """id -> its longest mention (first one on ties): the name BioGPT writes in its targets."""
    id2ent: dict[str, str] = {}
    for mention, eid in ent2id.items():
        if eid not in id2ent or len(mention) > len(id2ent[eid]):
            id2ent[eid] = mention
    return id2ent


class BC5CDR:
    name = "bc5cdr"

    def __init__(self, data_dir: Path, docs: str = "biogpt/BC5CDR/raw/test.json",
                 entities: str = "biogpt/BC5CDR/raw/test.entities.json",
                 gold: str = "biogpt/BC5CDR/CDR_Data/CDR.Corpus.v010516/CDR_TestSet.PubTator.txt"):
        data_dir = Path(data_dir)
        self.docs = load_json(data_dir / docs, "BioGPT's BC5CDR test set (BC5CDR/raw/test.json)")
        ents = load_json(data_dir / entities, "BioGPT's BC5CDR entity map (test.entities.json)")
        try:
            # Mentions are lower-case in the map; lower-casing the generated ones makes names case-insensitive.
            self.chem2id = {k.lower(): v for k, v in ents["chemical2id"].items()}
            self.dis2id = {k.lower(): v for k, v in ents["disease2id"].items()}
        except (KeyError, AttributeError) as e:
            raise DataFileError(data_dir / entities, "needs 'chemical2id' and 'disease2id' maps") from e
        self.gold = self._read_pubtator(require_file(data_dir / gold, "BC5CDR PubTator gold (CDR_TestSet.PubTator.txt)"))
        self._ids = [str(k) for k, v in self.docs.items() if v.get("relations")]

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
        return set(self.docs)

    def item(self, pmid: str) -> dict:
        return self.docs[pmid]

    def prompt(self, pmid: str) -> str:
        d = self.docs[pmid]
        return _content(d["title"], d["abstract"])

    def render(self, pmid: str) -> str:
        """The gold in BioGPT's target format (each id written as its longest mention in the document)."""
        d = self.docs[pmid]
        chem, dis = longest_mentions(d["chemical2id"]), longest_mentions(d["disease2id"])
        return render_cdr([(chem[r["chemical"]], dis[r["disease"]]) for r in d["relations"]])

    def to_ids(self, pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
        return {(self.chem2id.get(c.strip().lower(), "-1"), self.dis2id.get(d.strip().lower(), "-1")) for c, d in pairs}

    def score(self, predictions: dict[str, str], ids: list[str] | None = None, source: str = "predictions") -> Score:
        ids = self.ids() if ids is None else ids
        al = align(self.name, predictions, ids, set(self.docs), source)
        gold_all, pred_all, items, failed = [], [], [], 0
        for pmid, text in zip(ids, al.texts, strict=True):
            pairs = parse_cdr_pairs(text) if text is not None else []
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


class Interactions:
    """DDI and KD-DTI: 'the interaction between {drug} and {target} is {interaction}'."""

    def __init__(self, name: str, data_dir: Path, docs: str, title: bool):
        self.name = name
        self.title = title  # KD-DTI's source is title + abstract; DDI's the abstract alone
        self.docs = load_json(Path(data_dir) / docs, f"BioGPT's {name} test set ({docs})")
        self._ids = [str(k) for k, v in self.docs.items() if v.get("triples")]

    def ids(self) -> list[str]:
        return self._ids

    def pmids(self) -> set[str]:
        # DDI's DrugBank documents carry their DDI id in this field; only numeric values are PMIDs.
        return {str(v["pmid"]) for v in self.docs.values() if str(v.get("pmid") or "").isdigit()}

    def item(self, key: str) -> dict:
        return self.docs[key]

    def prompt(self, key: str) -> str:
        d = self.docs[key]
        if self.title:
            return _content(d["title"], d["abstract"])
        return d["abstract"].strip().replace("\n", " ").lower()

    def gold_triples(self, key: str) -> list[tuple[str, str, str]]:
        return [(t["drug"], t["target"], t["interaction"]) for t in self.docs[key]["triples"] or []]

    def render(self, key: str) -> str:
        """The gold in BioGPT's target format (triples ordered by the drug's first position in the text)."""
        text = self.prompt(key)
        triples = sorted(self.gold_triples(key), key=lambda t: text.find(t[0]))
        return render_interactions(triples)

    def score(self, predictions: dict[str, str], ids: list[str] | None = None, source: str = "predictions") -> Score:
        ids = self.ids() if ids is None else ids
        al = align(self.name, predictions, ids, set(self.docs), source)
        pairs, items, failed = [], [], 0
        for key, text in zip(ids, al.texts, strict=True):
            triples = parse_interactions(text) if text is not None else []
            failed += text is not None and not triples
            pred = {hard_key(t) for t in triples}
            gold = {hard_key(t) for t in self.gold_triples(key)}
            pairs.append((pred, gold))
            items.append({"id": key, "gold": sorted(gold), "extracted": sorted(pred)})
        hm = hard_match(pairs)
        d = hm.as_dict()
        counts = {"evaluated": len(ids), "missing": al.missing, "unknown_ids": al.unknown, "failed": failed,
                  "n_pred": d.pop("n_pred"), "n_gold": d.pop("n_gold")}
        d.pop("documents")
        return Score(self.name, d, counts, items)


def DDI(data_dir: Path, docs: str = "biogpt/DDI/raw/test.json") -> Interactions:
    return Interactions("ddi", data_dir, docs, title=False)


def KDDTI(data_dir: Path, docs: str = "biogpt/KD-DTI/raw/test.json") -> Interactions:
    return Interactions("kd_dti", data_dir, docs, title=True)
