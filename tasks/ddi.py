"""DDI-2013 drug-drug interactions (BioGPT's RE-DDI): source `{abstract}` -> target
`the interaction between {drug} and {target} is {interaction}; ...`, scored by BioGPT's hard match
(tasks/interaction.py)."""

from __future__ import annotations

from tasks.interaction import InteractionTask


class DDI(InteractionTask):
    name = "ddi"
    layout = {"train": "biogpt/DDI/raw/train.json", "val": "biogpt/DDI/raw/valid.json",
              "test": "biogpt/DDI/raw/test.json"}
    title = False  # DrugBank/MedLine texts: the abstract alone


TASK = DDI()
