"""Finding and reading the tokenizer a data_prep output folder was built with."""

from __future__ import annotations

import json
from pathlib import Path

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
