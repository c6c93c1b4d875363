"""Typed model configuration with named presets (`ModelConfig.from_name("biogpt")`)."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

POSITIONS = ("rope", "learned")
ACTIVATIONS = ("gelu", "gelu_tanh", "relu")
BACKENDS = ("auto", "sdpa", "blocked", "flex", "flash", "naive")
LAYER_KINDS = ("local", "global")


@dataclass(frozen=True)
class ModelConfig:
    """Everything that decides the decoder's shape and math. Defaults give the `biogpt` preset."""

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

    def __post_init__(self) -> None:
        if isinstance(self.layer_pattern, list):  # YAML gives lists; keep the config hashable
            object.__setattr__(self, "layer_pattern", tuple(self.layer_pattern))
        positive = ("vocab_size", "n_layer", "n_head", "d_model", "d_ff", "max_seq_len", "max_chars",
                    "char_dim", "char_channels", "char_kernel", "term_buckets", "term_dim", "term_max_tokens")
        for key in positive:
            if getattr(self, key) <= 0:
                _bad(key, getattr(self, key), "must be > 0")
        if self.d_model % self.n_head:
            _bad("d_model", self.d_model, f"must be divisible by n_head={self.n_head}")
        if self.position not in POSITIONS:
            _bad("position", self.position, f"must be one of {POSITIONS}")
        if self.position == "rope" and self.head_dim % 2:
            _bad("d_model", self.d_model, f"RoPE needs an even head dim, got {self.head_dim}")
        if self.activation not in ACTIVATIONS:
            _bad("activation", self.activation, f"must be one of {ACTIVATIONS}")
        if self.attn_backend not in BACKENDS:
            _bad("attn_backend", self.attn_backend, f"must be one of {BACKENDS}")
        if self.window is not None and self.window < 1:
            _bad("window", self.window, "must be >= 1 or null (all layers global)")
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
        """Build from a plain mapping (e.g. Hydra's `cfg.model`); unknown keys and bad types fail,
        naming the key. A `name` key picks a preset that the other keys override."""
        d = dict(d)
        name = d.pop("name", None)
        if name is not None and name in presets:
            d = {**presets[name], **d}
        fields = {f.name: f for f in dataclasses.fields(cls)}
        hints = typing.get_type_hints(cls)
        for key, value in d.items():
            if key not in fields:
                close = difflib.get_close_matches(key, fields, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"model config: unknown key {key!r}{hint}; valid keys: {sorted(fields)}")
            d[key] = _coerce(key, value, hints[key])
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if out["layer_pattern"] is not None:
            out["layer_pattern"] = list(out["layer_pattern"])
        return out

    def replace(self, **changes: Any) -> ModelConfig:
        return self.from_mapping({**self.to_dict(), **changes})


def _bad(key: str, value: Any, why: str) -> None:
    raise ValueError(f"model config: {key}={value!r} {why}")


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Check `value` against the field's annotation; accept ints for floats and lists for tuples."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            _bad(key, value, "must be a list of strings")
        return tuple(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        _bad(key, value, "must be an integer")
    if hint is bool and not isinstance(value, bool):
        _bad(key, value, "must be true or false")
    if hint in (float, str) and not isinstance(value, hint):
        _bad(key, value, f"must be a {hint.__name__}")
    return value


# Presets describe the project's model (hybrid stages on, local attention with a global layer every
# 4th); `from_hf_biogpt` builds the all-global, hybrid-off config that reproduces BioGPT itself.
presets: dict[str, dict[str, Any]] = {
    "tiny": dict(vocab_size=512, n_layer=2, n_head=4, d_model=64, d_ff=256, max_seq_len=256,
                 position="rope", window=16, global_every=2, char_dim=16, char_channels=32,
                 term_buckets=1024, term_dim=32),
    # BioGPT (Luo et al. 2022) shape: 347M parameters with the hybrid stages off. Learned positions
    # keep it loadable from converted BioGPT weights (see docs/model.md).
    "biogpt": dict(vocab_size=42384, n_layer=24, n_head=16, d_model=1024, d_ff=4096, max_seq_len=1024,
                   position="learned"),
    # BioGPT-Large shape (1.57B, "1.5B" in the paper) with RoPE so contexts can grow past 2,048.
    "biogpt_large": dict(vocab_size=57717, n_layer=48, n_head=25, d_model=1600, d_ff=6400,
                         max_seq_len=2048, position="rope", window=512),
}
