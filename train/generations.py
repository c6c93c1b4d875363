"""Continued pretraining on a corpus with several generations (issue 13, docs/training.md).

`python -m data_prep ... append=true` adds generation g >= 2 to a prepared corpus. A run trains
on its "new" generations and replays `data.replay` of every batch from the older ones, to limit
forgetting. Which generations are new (`data.generations`, null = auto): those the checkpoint in
`task.init_from` has not seen, by the `data_generations` record every checkpoint carries (tokens
trained on per generation, accumulated over init_from continuations); on a fresh run, all.

A checkpoint from before generations existed records none; if it was trained on this same corpus
folder it saw generation 1 (the only one there was), which is what `seen_by_init` returns.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from common.config import ConfigError
from data_prep.tokens.shards import TokenShards, manifest_generations


@dataclass(frozen=True)
class GenerationPlan:
    corpus: list[int]  # every generation of the corpus when the run started
    new: list[int]  # trained on as the main part of every batch
    old: list[int]  # replayed (empty: no replay)
    replay: float  # fraction of each batch from `old` (0 when old is empty)
    seen: dict[str, int] = field(default_factory=dict)  # tokens per generation before this run (init_from)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "seen"}

    def describe(self) -> str:
        line = f"data: generation(s) {_list(self.new)} of {_list(self.corpus)}"
        if self.old:
            line += f", replaying {self.replay:g} of every batch from {_list(self.old)}"
        if self.seen:
            line += "; task.init_from has seen " + ", ".join(f"generation {g}: {n:,} tokens" for g, n in self.seen.items())
        return line


def _list(gens: list[int]) -> str:
    return ", ".join(map(str, gens)) or "none"


def read_manifest(data_dir: str | Path) -> dict:
    path = Path(data_dir) / "manifest.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise FileNotFoundError(f"{path}: unreadable ({e}); run `python -m data_prep ... out_dir={data_dir}` first") from None


def seen_by_init(meta: dict[str, Any], data_dir: str | Path | None) -> dict[str, int]:
    """Tokens per generation that the checkpoint with biogpt_meta `meta` was trained on."""
    record = meta.get("data_generations")
    if isinstance(record, dict):
        return {str(g): int(n) for g, n in record.items()}
    same_corpus = (data_dir and meta.get("data_manifest")
                   and Path(meta["data_manifest"]).resolve() == (Path(data_dir) / "manifest.json").resolve())
    if same_corpus and meta.get("task") == "pretrain":
        return {"1": int(meta.get("tokens_seen", 0))}
    return {}


def plan_generations(data_dir: str | Path, requested: list[int] | None, replay: float,
                     seen: dict[str, int], init_from: str | None = None) -> GenerationPlan:
    """The generations a pretraining run trains on and replays. Raises ConfigError naming the key."""
    corpus = manifest_generations(read_manifest(data_dir))
    if requested is not None:
        unknown = sorted(set(requested) - set(corpus))
        if unknown:
            raise ConfigError("data.generations", f"{_list(unknown)} not in {data_dir} (its generations: {_list(corpus)})")
        new = sorted(set(requested))
    else:
        new = [g for g in corpus if str(g) not in seen]
        if not new:
            raise ConfigError("data.generations", f"task.init_from={init_from} has already trained on every generation "
                              f"of {data_dir} ({_list(corpus)}): append one (python -m data_prep ... append=true), or "
                              "name the generations to train on, e.g. data.generations=[2]")
    old = [g for g in corpus if g not in new] if replay > 0 else []
    return GenerationPlan(corpus, new, old, replay if old else 0.0, dict(seen))


def add_tokens(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    out = dict(a)
    for g, n in b.items():
        out[g] = out.get(g, 0) + int(n)
    return dict(sorted(out.items(), key=lambda kv: int(kv[0])))


class GenerationTokens:
    """Tokens per generation in training samples: window w of part k covers tokens
    [w * seq_len, (w + 1) * seq_len) of that part's stream (its inputs; what tokens_seen counts)."""

    def __init__(self, parts: list[TokenShards], seq_len: int, sizes: list[int]):
        self.seq_len = seq_len
        self.offsets = np.cumsum([0, *sizes]).tolist()  # dataset index where each part starts
        self.spans = [[(s.generation, *s.tokens) for s in part.generation_spans()] for part in parts]

    def count(self, indices: np.ndarray) -> dict[str, int]:
        out: dict[str, int] = {}
        idx = np.asarray(indices, dtype=np.int64)
        for k, spans in enumerate(self.spans):
            w = idx[(idx >= self.offsets[k]) & (idx < self.offsets[k + 1])] - self.offsets[k]
            lo, hi = w * self.seq_len, (w + 1) * self.seq_len
            for g, s0, s1 in spans:
                n = int(np.clip(np.minimum(hi, s1) - np.maximum(lo, s0), 0, None).sum())
                if n:
                    out[str(g)] = out.get(str(g), 0) + n
        return out

