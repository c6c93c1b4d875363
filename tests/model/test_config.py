"""Config validation, presets, parameter counts and the torch-only import rule. (The presets as
Hydra's `model` group, and wrong types there, are tested with the training config: tests/train/test_config.py.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from model import Decoder, ModelConfig, presets
from model.config import ModelConfigError
from model.flops import attended_keys, count_params, flops_per_token

ROOT = Path(__file__).resolve().parents[2]


def test_presets_build_and_from_name_overrides():
    for name in presets:
        assert ModelConfig.from_name(name) == ModelConfig.from_mapping({"name": name})
    c = ModelConfig.from_name("tiny", window=8)
    assert c.window == 8 and c.n_layer == 2
    with pytest.raises(ValueError, match="unknown model preset 'huge'"):
        ModelConfig.from_name("huge")


@pytest.mark.parametrize("bad, match", [
    ({"n_layers": 2}, r"unknown key 'n_layers' \(did you mean 'n_layer'\?\)"),
    ({"d_model": 30, "n_head": 4}, "d_model=30 must be divisible by n_head=4"),
    ({"position": "alibi"}, "position='alibi' must be one of"),
    ({"attn_backend": "xformers"}, "attn_backend='xformers'"),
    ({"window": 0}, "window=0 must be >= 1"),
    ({"layer_pattern": ["local"]}, "layer_pattern"),
    ({"dropout": 1.5}, "dropout=1.5 must be in"),
    ({"rope_base": 0.0}, "rope_base=0.0 must be > 0"),
    ({"norm_eps": -1e-5}, "norm_eps=-1e-05 must be > 0"),
    ({"pad_id": 512}, r"pad_id=512 must be a token id in \[0, vocab_size=512\)"),
    ({"position_offset": -1}, "position_offset=-1 must be >= 0"),
])
def test_from_mapping_rejects_bad_values_naming_the_key(bad, match):
    with pytest.raises(ModelConfigError, match=match) as e:
        ModelConfig.from_mapping({**presets["tiny"], **bad})
    assert e.value.key in bad  # train reports it as config key 'model.<key>'


def test_layer_patterns_all_local_all_global_interleaved():
    c = ModelConfig.from_name("tiny", n_layer=8, window=4, global_every=4)
    assert c.pattern == ("local",) * 3 + ("global",) + ("local",) * 3 + ("global",)
    assert set(ModelConfig.from_name("tiny", global_every=0).pattern) == {"local"}
    assert set(ModelConfig.from_name("tiny", window=None).pattern) == {"global"}
    explicit = ModelConfig.from_mapping({**presets["tiny"], "layer_pattern": ["global", "local"]})
    assert explicit.pattern == ("global", "local") and isinstance(explicit.layer_pattern, tuple)


def test_every_preset_builds_and_round_trips():
    """What a checkpoint stores (`to_dict`) reads back as the same config, for every preset."""
    assert {"tiny", "biogpt", "biogpt_dense", "biogpt_large"} <= set(presets)
    for name in presets:
        c = ModelConfig.from_name(name)
        assert ModelConfig.from_mapping(c.to_dict()) == c, name
    dense = ModelConfig.from_name("biogpt_dense")
    assert set(dense.pattern) == {"global"} and not (dense.char_stage or dense.term_stage)  # BioGPT itself


@pytest.mark.parametrize("overrides", [
    {}, {"char_stage": False, "term_stage": False}, {"position": "learned", "tie_embeddings": False},
    {"bias": False, "n_layer": 3},
])
def test_analytic_parameter_count_matches_instantiation(overrides):
    c = ModelConfig.from_name("tiny", **overrides)
    m = Decoder(c)
    counts = count_params(c)
    assert counts["total"] == m.num_params()
    assert counts["non_embedding"] == m.num_params(non_embedding=True)


def test_preset_parameter_counts(capsys):
    biogpt = count_params(ModelConfig.from_name("biogpt", char_stage=False, char_output=False))["total"]
    large = count_params(ModelConfig.from_name("biogpt_large", char_stage=False, char_output=False))["total"]
    print(f"biogpt: {biogpt / 1e6:.1f}M, biogpt_large: {large / 1e9:.3f}B")
    assert abs(biogpt - 347e6) / 347e6 < 0.02
    # BioGPT-Large is called "1.5B" in the paper; its checkpoint holds 1.57B (this shape, RoPE).
    assert abs(large - 1.57e9) / 1.57e9 < 0.02 and 1.5e9 <= large < 1.6e9
    with torch.device("meta"):  # the real module agrees, without allocating memory
        assert Decoder(ModelConfig.from_name("biogpt")).num_params() == count_params(ModelConfig.from_name("biogpt"))["total"]


def test_flops_attention_term_counts_only_the_window():
    c = ModelConfig.from_name("tiny", window=16, global_every=0)
    assert attended_keys(c, 1024, 0) == pytest.approx((16 * 17 / 2 + (1024 - 16) * 16) / 1024)
    g = c.replace(window=None)
    assert attended_keys(g, 1024, 0) == pytest.approx(1025 / 2)
    assert flops_per_token(g, 4096) > flops_per_token(c, 4096)
    assert flops_per_token(c, 4096) == pytest.approx(flops_per_token(c, 8192), rel=1e-4)  # local: ~flat per token


def test_model_package_imports_only_torch_and_stdlib():
    import sys

    allowed = set(sys.stdlib_module_names) | {"torch", "model"}
    for f in sorted((ROOT / "model").glob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                # transformers / flash_attn are imported lazily inside the interop / GPU paths only
                assert top in allowed or top in {"transformers", "flash_attn"}, f"{f.name} imports {name}"
                if top in {"transformers", "flash_attn"}:
                    assert node.col_offset > 0, f"{f.name}: {name} must be imported inside a function"
