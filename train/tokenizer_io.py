"""Finding and reading the tokenizer a data_prep output folder was built with."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")


def tokenizer_path(data_dir: str | Path, explicit: str | None = None) -> Path:
    """`explicit`, else `<data_dir>/<manifest.tokenizer.path>`."""
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise FileNotFoundError(f"task.tokenizer: {p} does not exist")
        return p
    manifest = Path(data_dir) / "manifest.json"
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest}: missing; run `python -m data_prep ... out_dir={data_dir}` first, "
                                "or set task.tokenizer=<tokenizer.json>")
    rel = json.loads(manifest.read_text(encoding="utf-8"))["tokenizer"]["path"]
    p = Path(data_dir) / rel
    if not p.is_file():
        raise FileNotFoundError(f"{p}: tokenizer named by {manifest} is missing; rerun data_prep")
    return p


def run_tokenizer(tc) -> tuple[Path, Tokenizer, Any]:
    """The tokenizer a training run uses, and tc.model settled to match it (tc: TrainConfig); also
    the InitSource of task.init_from (None without one).

    Fine-tuning (`task.init_from`): the checkpoint's model shape and the tokenizer it was trained
    with; task.data_dir is not read, but set to the checkpoint's pretraining data folder (recorded in
    the run for eval's contamination guard). Continued pretraining (task.init_from with a language-
    model task): the checkpoint's shape and tokenizer, on the shards of task.data_dir, which must have
    been tokenized with that tokenizer. Otherwise task.tokenizer, else <task.data_dir>'s, with
    model.vocab_size := its size when task.vocab_size_from_tokenizer."""
    import tasks
    from tasks.base import Kind

    from .config import apply_init_model
    from .module import read_init_source

    if not tc.task.init_from:
        path = tokenizer_path(tc.task.data_dir, tc.task.tokenizer)
        tok = load_tokenizer(path)
        if tc.task.vocab_size_from_tokenizer:
            tc.model.vocab_size = tok.get_vocab_size(with_added_tokens=True)
        return path, tok, None
    src = read_init_source(tc.task.init_from)
    apply_init_model(tc, src.model_config)
    pretraining = tasks.get(tc.task.name).kind is Kind.LANGUAGE_MODEL
    if src.data_manifest and not pretraining:  # the model's pretraining data travels on: eval checks it for test documents
        tc.task.data_dir = str(Path(src.data_manifest).parent)
    if tc.task.tokenizer:
        path = tokenizer_path("", tc.task.tokenizer)
    elif src.tokenizer_file is not None:
        path = src.tokenizer_file
    elif src.tokenizer is not None:  # an exported folder: its tokenizer, as our tokenizer.json
        path = Path(tempfile.mkdtemp(prefix="biogpt-tok-")) / "tokenizer.json"
        src.tokenizer.save(str(path))
    else:
        raise FileNotFoundError(f"task.init_from={tc.task.init_from}: no tokenizer.json beside its run and none "
                                "recorded in it; set task.tokenizer=<the tokenizer.json it was trained with>")
    tok = load_tokenizer(path)
    if pretraining:
        _check_same_tokenizer(tc, path, tok)
    return path, tok, src


def _check_same_tokenizer(tc, path: Path, tok: Tokenizer) -> None:
    """Continued pretraining: the shards must hold ids of the checkpoint's tokenizer (a corpus
    prepared from scratch trains its own, whose ids mean other tokens)."""
    from common.config import ConfigError

    corpus = tokenizer_path(tc.task.data_dir)
    same = corpus.read_bytes() == path.read_bytes() or (
        json.loads((Path(tc.task.data_dir) / "manifest.json").read_text(encoding="utf-8"))["tokenizer"]["vocab_size"]
        == tok.get_vocab_size() and load_tokenizer(corpus).get_vocab() == tok.get_vocab())
    if not same:
        raise ConfigError("task.data_dir", f"{tc.task.data_dir} was tokenized with {corpus}, not the tokenizer of "
                          f"task.init_from={tc.task.init_from} ({path}): continue pretraining on a corpus the "
                          "checkpoint's data_prep folder grew (python -m data_prep ... append=true)")


def load_tokenizer(path: str | Path) -> Tokenizer:
    return Tokenizer.from_file(str(path))


def decoded_vocab(tok) -> list[str]:
    """Token strings by id as text (byte-level BPE: a word-initial token starts with a space)."""
    n = tok.get_vocab_size(with_added_tokens=True)
    decoded = tok.decode_batch([[i] for i in range(n)], skip_special_tokens=False)
    out = []
    for i, s in enumerate(decoded):
        raw = tok.id_to_token(i)
        out.append(raw if raw in SPECIALS else s)
    return out
