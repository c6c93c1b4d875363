"""BC5CDR chemical and disease mention recognition, generative (tasks/ner.py says how).

Target `chemicals: <mention>; ... . diseases: <mention>; ... .` (`none` for an empty type).
Fine-tuning: BioGPT's raw train/valid JSON, whose `chemical2id` / `disease2id` list each document's
distinct mentions (lower-cased). Test: the official `CDR_TestSet.PubTator.txt` (500 abstracts,
every mention with its type), read with the PubTator reader.
"""

from __future__ import annotations

from pathlib import Path

from tasks.base import item_field, listish, load_json
from tasks.ner import NERTask, read_pubtator

TYPES = ("chemical", "disease")
PUBTATOR_TYPES = {"Chemical": "chemical", "Disease": "disease"}


class BC5CDRNER(NERTask):
    name = "bc5cdr_ner"
    types = TYPES
    layout = {"train": "biogpt/BC5CDR/raw/train.json", "val": "biogpt/BC5CDR/raw/valid.json",
              "test": "biogpt/BC5CDR/CDR_Data/CDR.Corpus.v010516/CDR_TestSet.PubTator.txt"}

    def read(self, path: Path) -> dict[str, dict]:
        if path.suffix != ".json":
            return read_pubtator(path, PUBTATOR_TYPES, "BC5CDR PubTator file (CDR_TestSet.PubTator.txt)")
        raw = load_json(path, "BioGPT's BC5CDR file (BC5CDR/raw/*.json)")
        items = {}
        for key, item in raw.items():
            ents = []
            for field, etype in (("chemical2id", "chemical"), ("disease2id", "disease")):
                value = item_field(item, field, path, key)
                maps = listish(value, field, path, key) if value else []  # "" or {} when there is none
                ents += [(etype, m) for mp in maps for m in mp]
            items[str(key)] = {"title": item.get("title", ""), "abstract": item_field(item, "abstract", path, key),
                               "entities": ents}
        return items


TASK = BC5CDRNER()
