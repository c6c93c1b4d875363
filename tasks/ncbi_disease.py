"""NCBI-disease mention recognition, generative (tasks/ner.py says how): target
`diseases: <mention>; ... .` (`diseases: none.` when there is none).

All splits are PubTator files inside ../shared/data/corpus/raw/spyysalo+ncbi-disease.tar.gz
(592 / 100 / 100 abstracts; the train file repeats one PMID, read once), read from the archive. Its four mention types (SpecificDisease,
DiseaseClass, Modifier, CompositeMention) are all one type, disease, as NCBI-disease is usually scored.
"""

from __future__ import annotations

from pathlib import Path

from tasks.ner import NERTask, read_pubtator

ARCHIVE = "corpus/raw/spyysalo+ncbi-disease.tar.gz/spyysalo+ncbi-disease/original-data"
PUBTATOR_TYPES = {t: "disease" for t in ("SpecificDisease", "DiseaseClass", "Modifier", "CompositeMention")}


class NCBIDisease(NERTask):
    name = "ncbi_disease"
    types = ("disease",)
    layout = {"train": f"{ARCHIVE}/train/NCBItrainset_corpus.txt", "val": f"{ARCHIVE}/devel/NCBIdevelopset_corpus.txt",
              "test": f"{ARCHIVE}/test/NCBItestset_corpus.txt"}

    def read(self, path: Path) -> dict[str, dict]:
        return read_pubtator(path, PUBTATOR_TYPES, f"NCBI-disease PubTator file ({path.name})")


TASK = NCBIDisease()
