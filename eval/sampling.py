"""Token prompts -> text continuations through the model's batched `generate` (KV cache, left padding)."""

from __future__ import annotations

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


@torch.no_grad()
def generate_texts(loaded: Loaded, rows: list[list[int]], gen: GenerationConfig,
                   generator: torch.Generator | None = None) -> list[str]:
    new = loaded.model.generate(
        rows, gen.max_new_tokens, temperature=0.0 if gen.greedy else gen.temperature, top_k=gen.top_k,
        top_p=gen.top_p, eos_id=loaded.codec.eos_id, pad_id=loaded.pad_id, generator=generator,
    )
    eos = loaded.codec.eos_id
    return [loaded.codec.decode(r[:-1] if r and r[-1] == eos else r) for r in new]
