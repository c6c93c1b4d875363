"""Export to a transformers folder: what `transformers` loads equals our model (logits within 1e-5 in
float32, greedy generate() with the KV cache token for token), the tokenizer round-trips text with
its special tokens set, and load_exported reads the folder back as our (Decoder, Tokenizer, info)."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import pytest
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

from common.checkpoint import load_model
from export import load_exported
from export.hf import model_source_files

PROMPTS = ["The drug aspirin increased", "Metformin", "Patients with insulin and glucose kinase inhibitor tumor cells"]
ATOL = 1e-5


@pytest.fixture(scope="module")
def hybrid(hybrid_run, hybrid_export):
    model = AutoModelForCausalLM.from_pretrained(hybrid_export.out_dir, trust_remote_code=True).eval()
    ours, tok, info = load_model(hybrid_run["checkpoint"])
    return {"hf": model, "ours": ours, "tok": tok, "dir": hybrid_export.out_dir, "run": hybrid_run}


@pytest.fixture(scope="module")
def dense(dense_run, dense_export):
    model = AutoModelForCausalLM.from_pretrained(dense_export.out_dir).eval()
    ours, tok, info = load_model(dense_run["checkpoint"])
    return {"hf": model, "ours": ours, "tok": tok, "dir": dense_export.out_dir, "run": dense_run}


def prompt_ids(tok, text: str) -> list[int]:
    return [2] + tok.encode(text, add_special_tokens=False).ids


# ---- the folder ----------------------------------------------------------------------------------

def test_hybrid_export_ships_the_projects_own_model_files(hybrid, hybrid_export):
    out = Path(hybrid["dir"])
    assert hybrid_export.format == "remote_code"
    config = json.loads((out / "config.json").read_text())
    assert config["auto_map"]["AutoModelForCausalLM"] == "modeling_biogpt_healthcare.BioGptHealthcareForCausalLM"
    assert config["biogpt_config"]["char_stage"] and config["biogpt_config"]["window"] == 8
    for name in ("model.safetensors", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json", "README.md", "biogpt_export.json", "modeling_biogpt_healthcare.py"):
        assert (out / name).is_file(), name
    shipped = model_source_files()
    assert {p.name for p in shipped} >= {"decoder.py", "attention.py", "attention_backends.py", "kv_cache.py", "decode.py"}
    for src in shipped:  # copies, not a second implementation
        assert filecmp.cmp(src, out / src.name, shallow=False), src.name
    assert not (out / "loss.py").exists()  # only what the wrapper imports
    assert not list(out.parent.glob(".export.*")), "staging folders left behind"


def test_hybrid_model_is_trained_and_uses_local_attention_and_hybrid_stages(hybrid):
    ours = hybrid["ours"]
    assert ours.config.pattern == ("local", "global")
    assert float(ours.embed.char_gate.detach().abs().max()) > 0 and float(ours.embed.term_gate.detach().abs().max()) > 0


# ---- logits --------------------------------------------------------------------------------------

def test_hybrid_logits_equal_ours(hybrid):
    ids = torch.tensor([prompt_ids(hybrid["tok"], PROMPTS[2]) * 2])  # longer than the window
    with torch.no_grad():
        torch.testing.assert_close(hybrid["hf"](ids).logits, hybrid["ours"](ids), atol=ATOL, rtol=0)


def test_hybrid_left_padded_batch_logits_equal_single_rows(hybrid):
    tok = AutoTokenizer.from_pretrained(hybrid["dir"], trust_remote_code=True)
    batch = tok(PROMPTS, return_tensors="pt", padding=True)
    assert tok.padding_side == "left"
    with torch.no_grad():
        logits = hybrid["hf"](**batch).logits
        for i, p in enumerate(PROMPTS):
            ids = torch.tensor([prompt_ids(hybrid["tok"], p)])
            torch.testing.assert_close(logits[i, -ids.shape[1]:], hybrid["ours"](ids)[0], atol=ATOL, rtol=0)


def test_right_padding_is_refused(hybrid):
    ids = torch.tensor([[2, 50, 60, 1]])
    with pytest.raises(ValueError, match="left padding"):
        hybrid["hf"](ids, attention_mask=torch.tensor([[1, 1, 1, 0]]))


def test_dense_logits_equal_ours(dense):
    ids = torch.tensor([prompt_ids(dense["tok"], PROMPTS[2]), prompt_ids(dense["tok"], PROMPTS[2])[::-1]])
    with torch.no_grad():
        torch.testing.assert_close(dense["hf"](ids).logits, dense["ours"](ids), atol=ATOL, rtol=0)


# ---- generate ------------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["hybrid", "dense"])
def test_greedy_generate_with_kv_cache_equals_ours(which, request):
    m = request.getfixturevalue(which)
    for p in PROMPTS:
        ids = prompt_ids(m["tok"], p)
        out = m["hf"].generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                               max_new_tokens=30, do_sample=False, use_cache=True)
        new = out[0, len(ids):].tolist()
        ref = m["ours"].generate([ids], 30)[0]
        assert new[: len(ref)] == ref and len(ref) >= 1


def test_hybrid_generate_batched_and_uncached_equal_ours(hybrid):
    tok = AutoTokenizer.from_pretrained(hybrid["dir"], trust_remote_code=True)
    batch = tok(PROMPTS, return_tensors="pt", padding=True)
    ref = hybrid["ours"].generate([prompt_ids(hybrid["tok"], p) for p in PROMPTS], 24, eos_id=None)
    for use_cache in (True, False):
        out = hybrid["hf"].generate(**batch, max_new_tokens=24, min_new_tokens=24, do_sample=False, use_cache=use_cache)
        assert out[:, batch["input_ids"].shape[1]:].tolist() == ref, f"use_cache={use_cache}"


def test_hybrid_sampling_generate_is_reproducible(hybrid):
    ids = torch.tensor([prompt_ids(hybrid["tok"], PROMPTS[0])])
    runs = []
    for _ in range(2):
        torch.manual_seed(7)
        runs.append(hybrid["hf"].generate(ids, max_new_tokens=16, min_new_tokens=16, do_sample=True,
                                          temperature=1.5, top_p=0.95))
    assert torch.equal(runs[0], runs[1]) and runs[0].shape == (1, ids.shape[1] + 16)
    greedy = hybrid["hf"].generate(ids, max_new_tokens=16, min_new_tokens=16, do_sample=False)
    assert not torch.equal(runs[0], greedy)  # it really sampled


# ---- tokenizer -----------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["hybrid", "dense"])
def test_tokenizer_round_trips_and_has_its_special_tokens(which, request):
    m = request.getfixturevalue(which)
    tok = AutoTokenizer.from_pretrained(m["dir"])  # no trust_remote_code: the tokenizer needs no code
    assert (tok.bos_token, tok.pad_token, tok.eos_token, tok.unk_token) == ("<s>", "<pad>", "</s>", "<unk>")
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    for text in ["The drug aspirin increased risk of bleeding.", "β-blockers at 5 µg/kg (n = 12) reduced mortality",
                 "Metformin"]:
        ids = tok(text)["input_ids"]
        assert ids[0] == 2 and ids[1:] == m["tok"].encode(text, add_special_tokens=False).ids
        assert tok.decode(ids, skip_special_tokens=True) == text


# ---- model card ----------------------------------------------------------------------------------

def test_model_card_names_the_data_training_results_and_limitations(hybrid, hybrid_run):
    card = (Path(hybrid["dir"]) / "README.md").read_text()
    assert card.startswith("---\nlicense: other\n") and "custom_code" in card
    assert "# tiny-hybrid" in card
    for fact in ("pubmed", "pmc_oa", "CC BY-NC", "NLM",  # sources and licence mix
                 "| train | 270 |", "pubmedqa", "bc5cdr",  # documents, decontaminated eval sets
                 "tokens seen", "| 11,520 |",  # training
                 "local sliding window of 8 tokens on 1 of 2 layers", "character composition",
                 "perplexity 42.5", "accuracy 0.61",  # eval results under and beside the run
                 "fluent, confident and false statements", "Not for clinical decisions", "professional"):
        assert fact in card, fact
    assert "f1 0.99" not in card  # results of another checkpoint are left out
    assert f"{hybrid['ours'].num_params():,}" in card


def test_card_says_when_the_data_is_unknown(tmp_path, hybrid_run):
    from export.card import model_card

    info = {"model_config": hybrid_run["config"].to_dict(), "data_manifest": str(tmp_path / "gone.json"),
            "tokens_seen": 10, "step": 1, "config": {}}
    card = model_card(name="x", fmt="remote_code", license="other", info=info, params={"total": 10, "non_embedding": 5},
                      data=None, results=[], dtype="float32", checkpoint=str(tmp_path / "last.ckpt"))
    assert "training data is **unknown**" in card and "No evaluation results were found" in card


# ---- reading an export back ----------------------------------------------------------------------

@pytest.mark.parametrize("which", ["hybrid", "dense"])
def test_load_exported_returns_our_model_tokenizer_and_info(which, request):
    m = request.getfixturevalue(which)
    model, tok, info = load_exported(m["dir"])
    ref = m["ours"].state_dict()
    assert set(model.state_dict()) == set(ref)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, ref[k], atol=0, rtol=0)
    text = "The drug aspirin"
    assert tok.encode(text).ids == m["tok"].encode(text).ids  # the project's own encoding, no </s> added
    assert tok.decode(tok.encode(" increased").ids) == m["tok"].decode(m["tok"].encode(" increased").ids)
    assert info["step"] == 30 and info["tokens_seen"] == 30 * 8 * 48 and info["task"] == "pretrain"
    assert info["data_manifest"] == str(m["run"]["root"] / "data" / "manifest.json")
    assert info["model_config"] == m["ours"].config.to_dict()


def test_exported_folder_works_as_init_from(hybrid):
    """What train's task.init_from needs: the exported weights load strictly into a fresh Decoder."""
    from model import Decoder

    model, _, info = load_exported(hybrid["dir"])
    fresh = Decoder(hybrid["ours"].config, seed=123)
    fresh.load_state_dict(model.state_dict(), strict=True)
    ids = torch.tensor([prompt_ids(hybrid["tok"], PROMPTS[0])])
    with torch.no_grad():
        torch.testing.assert_close(fresh.eval()(ids), hybrid["ours"](ids), atol=0, rtol=0)


def test_export_of_an_export_keeps_its_record(hybrid, tmp_path):
    from export.app import run
    from export.config import ExportConfig

    r = run(ExportConfig(checkpoint=str(hybrid["dir"]), out_dir=str(tmp_path / "again"), dtype="bfloat16"))
    meta = json.loads((tmp_path / "again" / "biogpt_export.json").read_text())
    assert r.eval_results == 2 and meta["tokens_seen"] == 30 * 8 * 48 and meta["dtype"] == "bfloat16"
    model, _, _ = load_exported(tmp_path / "again")
    assert model.embed.tok.weight.dtype == torch.bfloat16
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "again", trust_remote_code=True)
    assert hf.model.embed.tok.weight.dtype == torch.bfloat16


def test_overwrite_replaces_a_previous_export_whole(hybrid_run, tmp_path):
    from export.app import run
    from export.config import ExportConfig

    out = tmp_path / "out"
    run(ExportConfig(checkpoint=str(hybrid_run["checkpoint"]), out_dir=str(out)))
    (out / "stale.txt").write_text("from before")
    run(ExportConfig(checkpoint=str(hybrid_run["checkpoint"]), out_dir=str(out), format="remote_code", overwrite=True))
    assert not (out / "stale.txt").exists() and (out / "model.safetensors").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp or old folders left


def test_transformers_version_is_recorded(hybrid):
    assert json.loads((Path(hybrid["dir"]) / "config.json").read_text())["transformers_version"] == transformers.__version__
