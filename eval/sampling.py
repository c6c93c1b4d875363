"""Token prompts -> text continuations through the model's batched `generate` (KV cache, left
padding), and the smoke subset `limit=N` draws from a test set."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported when generating, never for `limit=` on a prediction file
    import torch

    from eval.config import GenerationConfig
    from eval.modeling import Loaded


def text_prompt(loaded: Loaded, text: str, max_new_tokens: int) -> list[int]:
    """A free-text prompt: EOS first (every pretraining document follows one), cut from the left
    so that prompt + max_new_tokens fits the model's context."""
    room = loaded.max_len - max_new_tokens
    if room < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens} leaves no room for a prompt in {loaded.max_len} tokens")
    return ([loaded.codec.eos_id] + loaded.codec.encode(text))[-room:]


def generate_texts(loaded: Loaded, rows: list[list[int]], gen: GenerationConfig,
                   generator: torch.Generator | None = None) -> list[str]:
    import torch

    with torch.no_grad():
        new = loaded.model.generate(
            rows, gen.max_new_tokens, temperature=0.0 if gen.greedy else gen.temperature, top_k=gen.top_k,
            top_p=gen.top_p, eos_id=loaded.codec.eos_id, pad_id=loaded.pad_id, generator=generator,
        )
    eos = loaded.codec.eos_id
    return [loaded.codec.decode(r[:-1] if r and r[-1] == eos else r) for r in new]


def _label(bench, key: str) -> str | None:
    """The item's class where the task has one (PubMedQA's gold answer, HoC's label set); None otherwise."""
    gold = getattr(bench, "gold", None)
    if isinstance(gold, dict) and isinstance(gold.get(key), str):
        return gold[key]
    item = getattr(bench, "items", {}).get(key)
    if isinstance(item, dict):
        for field in ("final_decision", "labels", "label"):
            if isinstance(item.get(field), str):
                return item[field]
    return None


def smoke_subset(bench, ids: list[str], n: int, seed: int) -> list[str]:
    """`limit=n` items: stratified by label (each class in its share of the test set, largest
    remainders first) when the task has labels, else a seeded random sample; in file order.
    Test files can be ordered by label (PubMedQA's is), so the first n would hold one class."""
    if n >= len(ids):
        return list(ids)
    rng = random.Random(seed)
    strata: dict[str | None, list[str]] = {}
    for key in ids:
        strata.setdefault(_label(bench, key), []).append(key)
    for members in strata.values():
        rng.shuffle(members)
    quota = {k: n * len(v) / len(ids) for k, v in strata.items()}
    take = {k: int(q) for k, q in quota.items()}
    for k in sorted(quota, key=lambda k: (take[k] - quota[k], str(k)))[: n - sum(take.values())]:
        take[k] += 1
    chosen = {key for k, members in strata.items() for key in members[: take[k]]}
    return [key for key in ids if key in chosen]
