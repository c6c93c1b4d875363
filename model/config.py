"""Typed model configuration with named presets (`ModelConfig.from_name("biogpt")`).

The presets below are the only copy: `python -m train model=<name>` composes them (train/config.py
registers them as the `model` config group, with enums made from CHOICES so Hydra rejects a bad
value while composing). `__post_init__` is the model's one validation function (ranges, choices,
cross-field rules); it raises `ModelConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

POSITIONS = ("rope", "learned")
ACTIVATIONS = ("gelu", "gelu_tanh", "relu")
BACKENDS = ("auto", "sdpa", "blocked", "flex", "flash", "naive")
LAYER_KINDS = ("local", "global")
# The fields whose value (or, for layer_pattern, each entry) comes from a fixed set.
CHOICES: dict[str, tuple[str, ...]] = {"position": POSITIONS, "activation": ACTIVATIONS,
                                       "attn_backend": BACKENDS, "layer_pattern": LAYER_KINDS}


class ModelConfigError(ValueError):
    """A model config value is wrong; `key` is the field's name, `reason` what is wrong with it."""

    def __init__(self, key: str, reason: str, message: str):
        self.key, self.reason = key, reason
        super().__init__(f"model config: {message}")


@dataclass(frozen=True)
class ModelConfig:
    """Everything that decides the decoder's shape and math. Defaults are BioGPT's shape; the
    presets below override them."""

    # sizes
    vocab_size: int = 42384
    n_layer: int = 24
    n_head: int = 16
    d_model: int = 1024
    d_ff: int = 4096
    max_seq_len: int = 1024  # rows of the learned position table; RoPE has no limit
    # embeddings / positions
    position: str = "learned"  # "rope" | "learned" (BioGPT/fairseq, offset 2)
    position_offset: int = 2  # fairseq reserves the first two position rows
    rope_base: float = 10000.0
    scale_embedding: bool = True  # multiply token embeddings by sqrt(d_model), as BioGPT
    pad_id: int = 1
    # block
    activation: str = "gelu"
    bias: bool = True  # BioGPT has biases in every Linear
    norm_eps: float = 1e-5
    dropout: float = 0.0  # embedding + residual dropout
    attn_dropout: float = 0.0
    tie_embeddings: bool = True
    init_std: float = 0.02
    # attention pattern
    window: int | None = 256  # sliding window W (keys in (t-W, t]); None = every layer global
    global_every: int = 4  # layer i is global iff (i+1) % global_every == 0; 0 = all local
    layer_pattern: tuple[str, ...] | None = None  # explicit "local"/"global" per layer (wins)
    attn_backend: str = "auto"  # auto | sdpa | blocked | flex | flash | naive
    # hybrid embedding (stage 1, the token table, is always on)
    char_stage: bool = True  # stage 2: character composition over the vocabulary
    term_stage: bool = True  # stage 3: hashed embedding of the word prefix
    max_chars: int = 16  # characters kept per vocabulary entry
    char_dim: int = 32
    char_channels: int = 128
    char_kernel: int = 3
    term_buckets: int = 32768
    term_dim: int = 128
    term_max_tokens: int = 8  # a word prefix longer than this hashes its last N tokens
    # Initial value of the stage-2/3 gates. 0 leaves a converted model's outputs unchanged at step 0,
    # but then the stages' own weights get no gradient until the gates have grown.
    gate_init: float = 0.0
    # The character stage also shapes the (tied) output embedding: rare tokens are hard to *predict*,
    # which the input side alone cannot fix (docs/model.md "What the hybrid embedding buys").
    char_output: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.layer_pattern, list):  # YAML gives lists; keep the config hashable
            object.__setattr__(self, "layer_pattern", tuple(self.layer_pattern))
        positive = ("vocab_size", "n_layer", "n_head", "d_model", "d_ff", "max_seq_len", "max_chars",
                    "char_dim", "char_channels", "char_kernel", "term_buckets", "term_dim", "term_max_tokens",
                    "rope_base", "norm_eps", "init_std")
        for key in positive:
            if getattr(self, key) <= 0:
                _bad(key, getattr(self, key), "must be > 0")
        if self.d_model % self.n_head:
            _bad("d_model", self.d_model, f"must be divisible by n_head={self.n_head}")
        for key in ("position", "activation", "attn_backend"):
            if getattr(self, key) not in CHOICES[key]:
                _bad(key, getattr(self, key), f"must be one of {CHOICES[key]}")
        if self.position == "rope" and self.head_dim % 2:
            _bad("d_model", self.d_model, f"RoPE needs an even head dim, got {self.head_dim}")
        if self.position_offset < 0:
            _bad("position_offset", self.position_offset, "must be >= 0")
        if not 0 <= self.pad_id < self.vocab_size:
            _bad("pad_id", self.pad_id, f"must be a token id in [0, vocab_size={self.vocab_size})")
        if self.window is not None and self.window < 1:
            _bad("window", self.window, "must be >= 1 or null (all layers global)")
        if self.char_output and not self.char_stage:
            _bad("char_output", True, "needs char_stage=true (it reuses the character composer)")
        if self.char_output and not self.tie_embeddings:
            _bad("char_output", True, "needs tie_embeddings=true (it shapes the tied output embedding)")
        if self.global_every < 0:
            _bad("global_every", self.global_every, "must be >= 0 (0 = no global layers)")
        for key in ("dropout", "attn_dropout"):
            if not 0.0 <= getattr(self, key) < 1.0:
                _bad(key, getattr(self, key), "must be in [0, 1)")
        if self.layer_pattern is not None:
            if len(self.layer_pattern) != self.n_layer:
                _bad("layer_pattern", self.layer_pattern, f"needs one entry per layer ({self.n_layer})")
            if any(k not in LAYER_KINDS for k in self.layer_pattern):
                _bad("layer_pattern", self.layer_pattern, f"entries must be one of {LAYER_KINDS}")
            if "local" in self.layer_pattern and self.window is None:
                _bad("window", None, "layer_pattern has local layers, so window must be set")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    def is_global(self, layer: int) -> bool:
        """Whether layer `layer` attends to the full causal context (else a window of W)."""
        if self.layer_pattern is not None:
            return self.layer_pattern[layer] == "global"
        if self.window is None:
            return True
        return self.global_every > 0 and (layer + 1) % self.global_every == 0

    @property
    def pattern(self) -> tuple[str, ...]:
        return tuple("global" if self.is_global(i) else "local" for i in range(self.n_layer))

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_name(cls, name: str, **overrides: Any) -> ModelConfig:
        if name not in presets:
            raise ValueError(f"unknown model preset {name!r}; choose one of {sorted(presets)}")
        return cls.from_mapping({**presets[name], **overrides})

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> ModelConfig:
        """Build from a plain mapping (a checkpoint's `model_config`, Hydra's `cfg.model` as a dict).
        A `name` key picks a preset that the other keys override; an unknown key fails naming the
        closest field. Values are checked by `__post_init__` (Hydra input is typed by train's schema)."""
        d = dict(d)
        name = d.pop("name", None)
        if name is not None and name in presets:
            d = {**presets[name], **d}
        fields = [f.name for f in dataclasses.fields(cls)]
        for key in d:
            if key not in fields:
                close = difflib.get_close_matches(key, fields, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                why = f"unknown key{hint}; valid keys: {sorted(fields)}"
                raise ModelConfigError(key, why, f"{why.replace('unknown key', f'unknown key {key!r}', 1)}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if out["layer_pattern"] is not None:
            out["layer_pattern"] = list(out["layer_pattern"])
        return out

    def replace(self, **changes: Any) -> ModelConfig:
        return self.from_mapping({**self.to_dict(), **changes})


def _bad(key: str, value: Any, why: str) -> None:
    raise ModelConfigError(key, f"{value!r} {why}", f"{key}={value!r} {why}")


# The embedding the ablation measured best (`char_out`, docs/results.md "Architecture ablation").
BEST_EMBEDDING: dict[str, Any] = dict(char_stage=True, term_stage=False, gate_init=0.3, char_output=True)

# Presets describe the project's model (hybrid stages on, local attention with a global layer every
# 4th), except biogpt_dense, BioGPT itself. `python -m train model=<name>` composes these.
presets: dict[str, dict[str, Any]] = {
    # Tiny model for CPU tests and demos (seconds per step): every feature on, RoPE, W=16.
    "tiny": dict(vocab_size=512, n_layer=2, n_head=4, d_model=64, d_ff=256, max_seq_len=256,
                 position="rope", window=16, global_every=2, char_dim=16, char_channels=32,
                 term_buckets=1024, term_dim=32),
    # BioGPT (Luo et al. 2022) shape, context 2,048: 348M parameters with the hybrid stages off
    # (BioGPT's 347M + 1,024 more learned position rows), BioGPT's dropout 0.1. Learned positions
    # (2048 + 2, fairseq's offset); local attention W=256 with a global layer every 4th. BioGPT's
    # own weights (1024 + 2 positions) load into biogpt_dense (docs/model.md).
    # Embedding: the best-measured configuration of the architecture ablation (docs/results.md):
    # the character stage with gates starting at 0.3 and shaping the output embedding too; the term
    # stage off (not better alone; char + output beat char + term). Not established beyond noise.
    "biogpt": dict(vocab_size=42384, n_layer=24, n_head=16, d_model=1024, d_ff=4096, max_seq_len=2048,
                   position="learned", dropout=0.1, attn_dropout=0.1, **BEST_EMBEDDING),
    # BioGPT itself: all-global attention, hybrid stages off, learned positions 1024 + 2 (what
    # from_hf_biogpt builds; the weight import's target); for like-for-like comparisons with microsoft/biogpt.
    "biogpt_dense": dict(vocab_size=42384, n_layer=24, n_head=16, d_model=1024, d_ff=4096, max_seq_len=1024,
                         position="learned", dropout=0.1, attn_dropout=0.1, window=None,
                         char_stage=False, term_stage=False),
    # BioGPT-Large shape (1.57B, "1.5B" in the paper) with RoPE so contexts can grow past 2,048
    # with local layers (W=512, a global layer every 4th).
    "biogpt_large": dict(vocab_size=57717, n_layer=48, n_head=25, d_model=1600, d_ff=6400,
                         max_seq_len=2048, position="rope", window=512, **BEST_EMBEDDING),
}
