"""KD-DTI drug-target interactions (BioGPT's RE-DTI): source `{title} {abstract}` -> target
`the interaction between {drug} and {target} is {interaction}; ...`, scored by BioGPT's hard match
(tasks/interaction.py). The upstream train split is not in ../shared (too large): point
task.files.train at your copy (conf/task/kd_dti.yaml uses the valid split meanwhile)."""

from __future__ import annotations

from tasks.interaction import InteractionTask


class KDDTI(InteractionTask):
    name = "kd_dti"
    layout = {"train": "biogpt/KD-DTI/raw/train.json", "val": "biogpt/KD-DTI/raw/valid.json",
              "test": "biogpt/KD-DTI/raw/test.json"}
    title = True


TASK = KDDTI()
