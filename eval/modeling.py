"""A checkpoint, ready for evaluation: the model, a text codec and the checkpoint's info.

Loading goes through `common.checkpoint.load_model(path) -> (Decoder, tokenizer, info)`,
so eval reads every checkpoint train/ writes (ours, or a converted BioGPT one) without importing train/.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from common.checkpoint import CheckpointError, load_model
from eval.errors import EvalError

log = logging.getLogger(__name__)


class Codec:
    """Text <-> ids over a `tokenizers.Tokenizer` (or anything with the same encode/decode)."""

    def __init__(self, tokenizer, eos_id: int = 2):
        self.tok = tokenizer
        self.eos_id = eos_id

    def encode(self, text: str) -> list[int]:
        try:
            enc = self.tok.encode(text, add_special_tokens=False)
        except TypeError:  # an encode without that keyword
            enc = self.tok.encode(text)
        return list(enc.ids if hasattr(enc, "ids") else enc)

    def decode(self, ids: list[int]) -> str:
        try:
            return self.tok.decode(list(ids), skip_special_tokens=True)
        except TypeError:
            return self.tok.decode(list(ids))


@dataclass
class Loaded:
    model: torch.nn.Module
    codec: Codec
    info: dict
    device: torch.device
    max_len: int  # longest sequence the model takes
    pad_id: int = 1


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise EvalError(f"config key 'device': {name} requested but no CUDA device is visible; use device=cpu")
    return torch.device(name)


def pick_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, name)


def model_max_len(model: torch.nn.Module, info: dict) -> int:
    for holder in (getattr(model, "cfg", None), getattr(model, "config", None), info.get("model_config"), info.get("model")):
        value = holder.get("max_seq_len") if isinstance(holder, dict) else getattr(holder, "max_seq_len", None)
        if isinstance(value, int) and value > 0:
            return value
    return 1024


def load(checkpoint: Path, device: str = "auto", dtype: str = "auto") -> Loaded:
    try:
        model, tokenizer, info = load_model(checkpoint)
    except CheckpointError as e:  # already one line naming the file
        raise EvalError(str(e)) from e
    if tokenizer is None:
        raise EvalError(f"{checkpoint}: no tokenizer found for this checkpoint (looked for tokenizer.json in its "
                        "run folder and the path it records); copy the run's tokenizer.json beside checkpoints/")
    info = dict(info or {})
    dev = pick_device(device)
    model = model.to(device=dev, dtype=pick_dtype(dtype, dev)).eval()
    eos = info.get("eos_id")
    if eos is None and hasattr(tokenizer, "token_to_id"):
        eos = tokenizer.token_to_id("</s>")
    pad = getattr(getattr(model, "config", None), "pad_id", 1)
    return Loaded(model, Codec(tokenizer, 2 if eos is None else int(eos)), info, dev, model_max_len(model, info), int(pad))


@torch.no_grad()
def logits_of(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """(B, T) ids -> (B, T, V) float32 logits."""
    out = model(ids)
    out = out[0] if isinstance(out, tuple) else out
    return out.float()


@torch.no_grad()
def continuation_logprobs(loaded: Loaded, context: list[int], continuations: list[list[int]]) -> list[float]:
    """log p(continuation | context) for each continuation, in one right-padded batch.

    Right padding is safe for a causal model: positions after a sequence's end never influence it.
    The context is cut from the left so the longest candidate fits the model.
    """
    longest = max(len(c) for c in continuations)
    context = context[-(loaded.max_len - longest):]
    seqs = [context + c for c in continuations]
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), loaded.codec.eos_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
    logp = torch.log_softmax(logits_of(loaded.model, ids.to(loaded.device)), dim=-1)  # (B, T, V)
    scores = []
    for i, c in enumerate(continuations):
        start = len(context)
        pos = torch.arange(start - 1, start - 1 + len(c), device=logp.device)  # logits at t predict t+1
        tgt = torch.tensor(c, device=logp.device)
        scores.append(float(logp[i, pos, tgt].sum()))
    return scores
