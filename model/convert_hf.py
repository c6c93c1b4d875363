"""BioGPT interop: `transformers` BioGptForCausalLM <-> our Decoder, without importing transformers.

`from_hf_biogpt` returns a decoder configured as BioGPT (learned positions with offset 2,
sqrt(d)-scaled embeddings, pre-LN, GELU, tied head, all-global attention, hybrid stages off) whose
logits match. Keyword overrides switch on local attention / hybrid stages for continued
pretraining (see docs/model.md). The way back, `to_hf_biogpt_state`, gives the config and weights
that `export.hf.to_hf_biogpt` turns into a `BioGptForCausalLM` (model/ imports only torch).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .config import ModelConfig
from .decoder import Decoder
from .vocab import VocabTables


def config_from_hf(hf_config: Any, **overrides: Any) -> ModelConfig:
    act = getattr(hf_config, "hidden_act", "gelu")
    acts = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "relu": "relu"}
    if act not in acts:
        raise ValueError(f"from_hf_biogpt: hidden_act={act!r} is not supported (one of {sorted(acts)})")
    base = dict(
        vocab_size=hf_config.vocab_size, n_layer=hf_config.num_hidden_layers,
        n_head=hf_config.num_attention_heads, d_model=hf_config.hidden_size, d_ff=hf_config.intermediate_size,
        max_seq_len=hf_config.max_position_embeddings, position="learned", position_offset=2,
        scale_embedding=bool(hf_config.scale_embedding), pad_id=hf_config.pad_token_id, activation=acts[act],
        bias=True, norm_eps=1e-5,  # BioGPT builds nn.LayerNorm with its default eps
        dropout=float(hf_config.hidden_dropout_prob), attn_dropout=float(hf_config.attention_probs_dropout_prob),
        tie_embeddings=True, window=None, char_stage=False, term_stage=False,
    )
    return ModelConfig.from_mapping({**base, **overrides})


def _qkv(sd: dict[str, torch.Tensor], prefix: str, kind: str) -> torch.Tensor:
    return torch.cat([sd[f"{prefix}.self_attn.{p}_proj.{kind}"] for p in ("q", "k", "v")], dim=0)


def from_hf_biogpt(hf_model: Any, tokens: Sequence[str] | VocabTables | None = None, **overrides: Any) -> Decoder:
    """Our Decoder with the weights of a `BioGptForCausalLM`. `overrides` change the config (e.g.
    window=256, global_every=4, char_stage=True, term_stage=True); `tokens` (BioGPT's dict.txt
    entries, index = id, or `VocabTables`) are attached for the hybrid stages."""
    model = from_hf_biogpt_state(hf_model.config, hf_model.state_dict(), tokens, **overrides)
    return model.to(next(hf_model.parameters()).dtype)


def from_hf_biogpt_state(hf_config: Any, state_dict: dict[str, torch.Tensor],
                         tokens: Sequence[str] | VocabTables | None = None, **overrides: Any) -> Decoder:
    """`from_hf_biogpt` from a BioGPT config (any object with its attributes) and its state dict,
    e.g. read from an exported folder's config.json and model.safetensors without `transformers`."""
    config = config_from_hf(hf_config, **overrides)
    sd = {k: v.detach() for k, v in state_dict.items()}
    out = {"embed.tok.weight": sd["biogpt.embed_tokens.weight"], "embed.pos.weight": sd["biogpt.embed_positions.weight"],
           "ln_f.weight": sd["biogpt.layer_norm.weight"], "ln_f.bias": sd["biogpt.layer_norm.bias"]}
    if config.position != "learned":
        del out["embed.pos.weight"]
    for i in range(config.n_layer):
        src, dst = f"biogpt.layers.{i}", f"blocks.{i}"
        out[f"{dst}.attn.qkv.weight"], out[f"{dst}.attn.qkv.bias"] = _qkv(sd, src, "weight"), _qkv(sd, src, "bias")
        for a, b in (("self_attn.out_proj", "attn.proj"), ("self_attn_layer_norm", "ln_1"),
                     ("final_layer_norm", "ln_2"), ("fc1", "mlp.fc"), ("fc2", "mlp.proj")):
            for kind in ("weight", "bias"):
                out[f"{dst}.{b}.{kind}"] = sd[f"{src}.{a}.{kind}"]
    model = Decoder(config)
    missing, unexpected = model.load_state_dict(out, strict=False)
    # Only the new hybrid-stage weights (gated off at zero) and vocabulary buffers may be missing.
    missing = [k for k in missing if not k.startswith(("embed.char", "embed.term", "embed.chars", "embed.starts_word",
                                                       "embed.ends_word", "embed.vocab_attached"))]
    if missing or unexpected:
        raise ValueError(f"from_hf_biogpt: weights did not map cleanly (missing {missing}, unexpected {unexpected})")
    if tokens is not None:
        model.attach_vocab(tokens)
    return model.to(out["embed.tok.weight"].dtype)


def biogpt_incompatibilities(c: ModelConfig) -> list[str]:
    """Why a decoder with this config cannot be a plain `BioGptForCausalLM` ([] when it can)."""
    return [why for bad, why in (
        (c.position != "learned" or c.position_offset != 2, "positions must be learned with offset 2"),
        (c.char_stage or c.term_stage, "hybrid stages have no BioGPT equivalent (set char_stage/term_stage false)"),
        (any(not c.is_global(i) for i in range(c.n_layer)), "local attention layers have no BioGPT equivalent"),
        (not c.bias or not c.tie_embeddings, "BioGPT has biases and a tied head"),
        (c.norm_eps != 1e-5, "BioGPT's LayerNorms use eps=1e-5"),
    ) if bad]


def to_hf_biogpt_state(model: Decoder) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(BioGptConfig keyword arguments, BioGptForCausalLM state dict) for a BioGPT-compatible
    decoder; `export.hf.to_hf_biogpt` builds the transformers model from them. Raises ValueError
    saying why when the decoder has no BioGPT equivalent."""
    c = model.config
    problems = biogpt_incompatibilities(c)
    if problems:
        raise ValueError("to_hf_biogpt: this decoder is not BioGPT-compatible: " + "; ".join(problems))
    acts = {"gelu": "gelu", "gelu_tanh": "gelu_pytorch_tanh", "relu": "relu"}
    config = dict(
        vocab_size=c.vocab_size, hidden_size=c.d_model, num_hidden_layers=c.n_layer, num_attention_heads=c.n_head,
        intermediate_size=c.d_ff, hidden_act=acts[c.activation], max_position_embeddings=c.max_seq_len,
        scale_embedding=c.scale_embedding, hidden_dropout_prob=c.dropout, attention_probs_dropout_prob=c.attn_dropout,
        pad_token_id=c.pad_id, tie_word_embeddings=True,
    )
    sd = {k: v.detach() for k, v in model.state_dict().items()}
    C = c.d_model
    out = {"biogpt.embed_tokens.weight": sd["embed.tok.weight"], "biogpt.embed_positions.weight": sd["embed.pos.weight"],
           "biogpt.layer_norm.weight": sd["ln_f.weight"], "biogpt.layer_norm.bias": sd["ln_f.bias"],
           "output_projection.weight": sd["embed.tok.weight"]}
    for i in range(c.n_layer):
        src, dst = f"blocks.{i}", f"biogpt.layers.{i}"
        for kind in ("weight", "bias"):
            for j, p in enumerate("qkv"):
                out[f"{dst}.self_attn.{p}_proj.{kind}"] = sd[f"{src}.attn.qkv.{kind}"][j * C : (j + 1) * C]
        for a, b in (("self_attn.out_proj", "attn.proj"), ("self_attn_layer_norm", "ln_1"),
                     ("final_layer_norm", "ln_2"), ("fc1", "mlp.fc"), ("fc2", "mlp.proj")):
            for kind in ("weight", "bias"):
                out[f"{dst}.{a}.{kind}"] = sd[f"{src}.{b}.{kind}"]
    return config, out
