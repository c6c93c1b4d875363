"""What a checkpoint is given for each test item, in one of two source formats (`task.prompt_format`).

- `train` (default): the source exactly as `python -m train` fine-tunes on it (the task's
  `Task.source`), without a leading EOS and cut from its end when too long, so a checkpoint
  fine-tuned by `python -m train task=<task>` sees at test time what it saw in training.
- `biogpt`: BioGPT's `rebuild_data.py` source (`Task.biogpt_source`: lower-cased, title and abstract
  joined with ". ") after an EOS, as fairseq's language model prompt starts; for converted BioGPT
  checkpoints.

Either way the model's continuation starts with the task's target wording.
"""

from __future__ import annotations

from eval.modeling import Loaded
from tasks.base import PromptFormat, TestSet


def source_ids(loaded: Loaded, bench: TestSet, key: str, fmt: PromptFormat, room: int) -> list[int]:
    """Token ids of the source, at most `room` of them (the end is cut, as train/ cuts it)."""
    if room < 1:
        raise ValueError(f"no room for a prompt in the model's {loaded.max_len} tokens; lower max_new_tokens")
    text, eos_first = bench.source(key, fmt)
    ids = ([loaded.codec.eos_id] if eos_first else []) + loaded.codec.encode(text)
    return ids[:room]
