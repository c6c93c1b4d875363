"""Writing and reading exported model folders (the layout `transformers.from_pretrained` reads).

Two formats:
- `remote_code`: the project's own `model/*.py` files, copied byte for byte, beside
  `modeling_biogpt_healthcare.py` (a thin `PreTrainedModel` + `GenerationMixin` wrapper, see
  export/hf_code/); config.json's `auto_map` points `transformers` at it (`trust_remote_code=True`).
  The weights are the Decoder's state dict under `model.`.
- `biogpt`: a plain `BioGptForCausalLM` (`to_hf_biogpt` below) for checkpoints of BioGPT's
  dense shape; no remote code.
Both get the project's tokenizer as a fast tokenizer with its special tokens named, and
`biogpt_export.json`: what the run recorded (step, tokens seen, configs, data manifest), which
`load_exported` returns in the same `info` shape as `common.checkpoint.load_model`.
"""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from common.atomic import atomic_write_json, atomic_write_text

MODEL_DIR = Path(__file__).resolve().parents[1] / "model"
WRAPPER = Path(__file__).resolve().parent / "hf_code" / "modeling_biogpt_healthcare.py"
ARCHITECTURE = "BioGptHealthcareForCausalLM"
MODEL_TYPE = "biogpt_healthcare"
INFO_FILE = "biogpt_export.json"
WEIGHTS = "model.safetensors"
SPECIAL_TOKENS = {"bos_token": ("<s>", 0), "pad_token": ("<pad>", 1), "eos_token": ("</s>", 2), "unk_token": ("<unk>", 3)}
# BioGptConfig's defaults: transformers writes only the values that differ from them.
BIOGPT_DEFAULTS = dict(vocab_size=42384, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                       intermediate_size=4096, hidden_act="gelu", hidden_dropout_prob=0.1,
                       attention_probs_dropout_prob=0.1, max_position_embeddings=1024, scale_embedding=True,
                       pad_token_id=1)


class ExportError(RuntimeError):
    """An export cannot be written or read (one line, naming the file and what to do)."""


# ---- model code ----------------------------------------------------------------------------------

def model_source_files(roots: tuple[str, ...] = ("decoder.py", "decode.py", "config.py")) -> list[Path]:
    """The model/*.py files the wrapper needs: `roots` and everything they import relatively
    (imports inside functions included, e.g. decoder.generate's `from .generate import ...`)."""
    todo, seen = list(roots), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = MODEL_DIR / name
        if not path.is_file():
            raise ExportError(f"{path}: missing from the model package; the checkout is incomplete")
        seen.add(name)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:  # `from .x import y`, `from . import x`
                todo += [node.module.split(".")[0] + ".py"] if node.module else [a.name + ".py" for a in node.names]
    return [MODEL_DIR / n for n in sorted(seen)]


# ---- tokenizer -----------------------------------------------------------------------------------

def check_special_tokens(tok) -> None:
    for _, (token, expected) in SPECIAL_TOKENS.items():
        got = tok.token_to_id(token)
        if got != expected:
            raise ExportError(f"tokenizer: {token} has id {got}, expected {expected} (<s>=0, <pad>=1, </s>=2, "
                              "<unk>=3 are fixed in this project); export the run's own tokenizer.json")


def write_tokenizer(tok, folder: Path, max_len: int) -> dict:
    """tokenizer.json + tokenizer_config.json + special_tokens_map.json for `AutoTokenizer`.

    Two transformers conveniences are added to the tokenizer.json: encoding prepends `</s>` (the
    document separator every training document follows, as BioGPT's tokenizer does), and decoding
    drops the space the byte-level pre-tokenizer put before the first word, so text round-trips.
    Returns the original components so `load_exported` can undo both."""
    from tokenizers import Tokenizer, decoders, processors

    check_special_tokens(tok)
    data = json.loads(tok.to_str())
    original = {"post_processor": data.get("post_processor"), "decoder": data.get("decoder")}
    hf = Tokenizer.from_str(tok.to_str())
    eos, eos_id = SPECIAL_TOKENS["eos_token"]
    hf.post_processor = processors.TemplateProcessing(single=f"{eos} $A", pair=f"{eos} $A {eos} $B",
                                                      special_tokens=[(eos, eos_id)])
    pre = data.get("pre_tokenizer") or {}
    if pre.get("type") == "ByteLevel" and pre.get("add_prefix_space") and hf.decoder is not None:
        hf.decoder = decoders.Sequence([hf.decoder, decoders.Strip(" ", 1, 0)])
    atomic_write_text(folder / "tokenizer.json", hf.to_str(pretty=True))
    specials = {k: v[0] for k, v in SPECIAL_TOKENS.items()}
    atomic_write_json(folder / "special_tokens_map.json", specials)
    atomic_write_json(folder / "tokenizer_config.json", {
        "tokenizer_class": "PreTrainedTokenizerFast", **specials, "model_max_length": max_len,
        "padding_side": "left",  # batched generation needs left padding (the model refuses right padding)
        "clean_up_tokenization_spaces": False, "add_bos_token": False, "add_eos_token": False,
    })
    return original


def restore_tokenizer(path: Path, original: dict | None):
    """The project's tokenizer from an exported tokenizer.json, with the transformers
    conveniences of `write_tokenizer` undone (`original` from biogpt_export.json)."""
    from tokenizers import Tokenizer

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if original is not None:
            data["post_processor"], data["decoder"] = original.get("post_processor"), original.get("decoder")
        return Tokenizer.from_str(json.dumps(data))
    except Exception as e:  # tokenizers raises a bare Exception with a serde message
        raise ExportError(f"{path}: not a readable tokenizer.json ({str(e)[:200]})") from None


# ---- writing -------------------------------------------------------------------------------------

def write_remote_code(model, folder: Path, dtype: torch.dtype, transformers_version: str | None) -> None:
    """config.json (with auto_map), model.safetensors, generation_config.json and the model code."""
    from safetensors.torch import save_file

    c = model.config
    for src in [*model_source_files(), WRAPPER]:
        shutil.copyfile(src, folder / src.name)
    module = WRAPPER.stem
    config = {
        "architectures": [ARCHITECTURE], "model_type": MODEL_TYPE,
        "auto_map": {"AutoConfig": f"{module}.BioGptHealthcareConfig",
                     "AutoModelForCausalLM": f"{module}.{ARCHITECTURE}"},
        "biogpt_config": c.to_dict(),
        "vocab_size": c.vocab_size, "hidden_size": c.d_model, "num_hidden_layers": c.n_layer,
        "num_attention_heads": c.n_head, "intermediate_size": c.d_ff, "max_position_embeddings": c.max_seq_len,
        "bos_token_id": 0, "pad_token_id": c.pad_id, "eos_token_id": 2, "tie_word_embeddings": False,
        "use_cache": True, "torch_dtype": str(dtype).removeprefix("torch."),
        "transformers_version": transformers_version,
    }
    atomic_write_json(folder / "config.json", config)
    # safetensors refuses tensors that share memory; every entry is its own contiguous copy.
    state = {f"model.{k}": v.detach().to(dtype if v.is_floating_point() else v.dtype).contiguous().clone()
             for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS), metadata={"format": "pt"})
    write_generation_config(folder, c.max_seq_len, transformers_version)


def to_hf_biogpt(model):
    """A `transformers.BioGptForCausalLM` with the weights of a BioGPT-compatible decoder (raises
    ValueError with the reasons when the decoder does not have BioGPT's shape)."""
    from transformers import BioGptConfig, BioGptForCausalLM

    from model.convert_hf import to_hf_biogpt_state

    config, state = to_hf_biogpt_state(model)
    hf = BioGptForCausalLM(BioGptConfig(**config))
    hf.load_state_dict({k: v.clone() for k, v in state.items()}, strict=True)
    return hf.to(next(model.parameters()).dtype)


def write_biogpt(model, folder: Path, dtype: torch.dtype) -> None:
    """A plain BioGptForCausalLM (no remote code) for a decoder of BioGPT's dense shape."""
    hf = to_hf_biogpt(model.float()).to(dtype)
    hf.generation_config.update(bos_token_id=0, eos_token_id=2, pad_token_id=model.config.pad_id)
    hf.save_pretrained(str(folder), safe_serialization=True)
    # Full config (not only the values that differ from BioGptConfig's defaults), so the file says
    # everything by itself and `load_exported` needs no transformers.
    atomic_write_text(folder / "config.json", hf.config.to_json_string(use_diff=False))
    write_generation_config(folder, model.config.max_seq_len, _transformers_version())


def write_generation_config(folder: Path, max_len: int, transformers_version: str | None) -> None:
    atomic_write_json(folder / "generation_config.json", {
        "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1, "do_sample": False,
        "transformers_version": transformers_version})


def _transformers_version() -> str | None:
    try:
        import transformers
    except ImportError:
        return None
    return transformers.__version__


# ---- reading -------------------------------------------------------------------------------------

def is_exported(path: str | Path) -> bool:
    return Path(path).is_dir() and (Path(path) / "config.json").is_file()


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ExportError(f"{path}: unreadable JSON ({str(e)[:200]})") from None


def _weights(folder: Path, map_location: Any) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    device = str(map_location)
    single, index = folder / WEIGHTS, folder / f"{WEIGHTS}.index.json"
    try:
        if single.is_file():
            return load_file(str(single), device=device)
        if index.is_file():  # sharded (save_pretrained of a large model)
            state: dict[str, torch.Tensor] = {}
            for shard in sorted(set(_read_json(index)["weight_map"].values())):
                state.update(load_file(str(folder / shard), device=device))
            return state
    except (OSError, ValueError, RuntimeError) as e:
        raise ExportError(f"{folder}: unreadable weights ({type(e).__name__}: {str(e)[:200]})") from None
    raise ExportError(f"{folder}: no {WEIGHTS} (or its index); not a folder written by `python -m export`")


def load_exported(path: str | Path, map_location: str | torch.device = "cpu"):
    """(Decoder in eval mode, tokenizers.Tokenizer or None, info) from an exported folder, in the
    shape `common.checkpoint.load_model` returns, so an export can be evaluated, served or used
    as `task.init_from`. Reads both formats without importing `transformers`.

    The tokenizer is the project's own (the exported tokenizer.json's transformers conveniences
    undone), so info['tokenizer_path'] is None: that file encodes differently by default."""
    from model import Decoder, ModelConfig
    from model.convert_hf import from_hf_biogpt_state

    folder = Path(path)
    if not is_exported(folder):
        raise ExportError(f"{folder}: no config.json; pass a folder written by `python -m export`")
    config = _read_json(folder / "config.json")
    meta = _read_json(folder / INFO_FILE) if (folder / INFO_FILE).is_file() else {}
    state = _weights(folder, map_location)
    kind = config.get("model_type")
    try:
        if kind == MODEL_TYPE:
            dtype = next((v.dtype for v in state.values() if v.is_floating_point()), torch.float32)
            model = Decoder(ModelConfig.from_mapping(config["biogpt_config"])).to(dtype)  # as saved
            model.load_state_dict({k.removeprefix("model."): v for k, v in state.items()}, strict=True)
        elif kind == "biogpt":
            model = from_hf_biogpt_state(SimpleNamespace(**{**BIOGPT_DEFAULTS, **config}), state)
        else:
            raise ExportError(f"{folder}/config.json: model_type {kind!r} is neither {MODEL_TYPE!r} nor 'biogpt'; "
                              "this folder was not written by `python -m export`")
    except (KeyError, ValueError, RuntimeError) as e:
        if isinstance(e, ExportError):
            raise
        raise ExportError(f"{folder}: weights do not match config.json ({str(e).splitlines()[0][:300]})") from None
    model.eval()
    tok = None
    if (folder / "tokenizer.json").is_file():
        tok = restore_tokenizer(folder / "tokenizer.json", meta.get("tokenizer_original"))
    info = {"step": meta.get("step", 0), "tokens_seen": meta.get("tokens_seen", 0), "task": meta.get("task"),
            "model_config": model.config.to_dict(), "config": meta.get("config", {}), "tokenizer_path": None,
            "checkpoint": str(folder), "data_manifest": meta.get("data_manifest"),
            "source_checkpoint": meta.get("source_checkpoint"), "eval_results": meta.get("eval_results", [])}
    return model, tok, info
