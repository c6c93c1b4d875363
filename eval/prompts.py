"""What a checkpoint is given for each test item, in one of two source formats.

- `train` (default): the source exactly as train/'s fine-tuning builds it
  (`train.finetune_data.FORMATS`), without a leading EOS and cut from its end when too long, so a
  checkpoint fine-tuned by `python -m train task=<task>` sees at test time what it saw in training.
- `biogpt`: BioGPT's `rebuild_data.py` source (lower-cased, title and abstract joined with ". ")
  after an EOS, as fairseq's language model prompt starts; for converted BioGPT checkpoints.
  HoC has no train/ format and always uses this one.

Either way the model's continuation starts with " the answer to ..." / " the relation between ...".
"""

from __future__ import annotations

from pathlib import Path

from eval.modeling import Loaded

FORMATS = ("train", "biogpt")


def source_text(bench, key: str, fmt: str) -> tuple[str, bool]:
    """(source text, whether an EOS goes before it)."""
    if fmt == "train" and bench.name != "hoc":
        from train.finetune_data import FORMATS as TRAIN_FORMATS

        return TRAIN_FORMATS[bench.name](key, bench.item(key), Path(f"<{bench.name} test set>"))["source"], False
    return bench.prompt(key).rstrip(), True


def source_ids(loaded: Loaded, bench, key: str, fmt: str, room: int) -> list[int]:
    """Token ids of the source, at most `room` of them (the end is cut, as train/ cuts it)."""
    if room < 1:
        raise ValueError(f"no room for a prompt in the model's {loaded.max_len} tokens; lower max_new_tokens")
    text, eos_first = source_text(bench, key, fmt)
    ids = ([loaded.codec.eos_id] if eos_first else []) + loaded.codec.encode(text)
    return ids[:room]
