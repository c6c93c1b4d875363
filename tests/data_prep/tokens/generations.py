"""Test helper: add a generation to a prepared corpus by hand, in the issue-13 contract's format
(docs/data_prep.md): new shards under shards/gen-<g:05d>/, retired/gen-<g:05d>-<split>.u64 lists
of split-wide document numbers, and the manifest's `generations` list. It is what
`python -m data_prep ... append=true` writes, without parsing anything, so the reader, training
and evaluation tests do not depend on the append pipeline.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from data_prep.tokens.shards import IDX_DTYPE, ShardWriter


def physical_lengths(out_dir: Path, manifest: dict, split: str) -> np.ndarray:
    """Token count (EOS included) of every document of `split`, retired ones too, in manifest order."""
    parts = []
    for s in manifest["splits"][split]["shards"]:
        ends = np.fromfile(out_dir / s["idx"], dtype=IDX_DTYPE).astype(np.int64)
        parts.append(np.diff(np.concatenate([[0], ends])))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _gen1_entry(manifest: dict) -> dict:
    splits = {split: {"tokens": v["tokens"], "documents": v["documents"], "shards": list(range(len(v["shards"])))}
              for split, v in manifest["splits"].items()}
    return {"generation": 1, "inputs": manifest.get("inputs", []), "counts": manifest.get("counts", {}),
            "dropped": manifest.get("dropped", {}), "splits": splits, "retired": {},
            "live_tokens": {split: v["tokens"] for split, v in manifest["splits"].items()}}


def append_generation(out_dir: Path, docs: dict[str, list], retire: dict[str, list[int]] | None = None,
                      max_tokens: int = 2000) -> dict:
    """Add generation g (the next number) to the corpus in `out_dir`, in place: `docs[split]` are
    token-id lists (no EOS) it writes, `retire[split]` split-wide document numbers it retires.
    Returns the new manifest (also written to out_dir/manifest.json)."""
    out_dir = Path(out_dir)
    manifest = json.loads((out_dir / "manifest.json").read_text())
    gens = manifest.get("generations") or [_gen1_entry(manifest)]
    g = len(gens) + 1
    tok = manifest["tokenizer"]
    entry: dict = {"generation": g, "inputs": [{"path": f"update-{g}.xml.gz", "size": 0, "sha256": "0" * 64}],
                   "counts": {}, "dropped": {}, "splits": {}, "retired": {}, "live_tokens": {}}
    for split, part in manifest["splits"].items():
        lengths = physical_lengths(out_dir, manifest, split)
        gone = sorted(set((retire or {}).get(split, [])))
        if gone:
            rel = f"retired/gen-{g:05d}-{split}.u64"
            raw = np.asarray(gone, dtype=IDX_DTYPE).tobytes()
            (out_dir / "retired").mkdir(exist_ok=True)
            (out_dir / rel).write_bytes(raw)
            entry["retired"][split] = {"file": rel, "documents": len(gone), "tokens": int(lengths[gone].sum()),
                                       "sha256": hashlib.sha256(raw).hexdigest()}
        w = ShardWriter(out_dir / "shards" / f"gen-{g:05d}", split, int(tok["vocab_size"]), int(tok["eos_id"]),
                        max_tokens=max_tokens, rel_to=out_dir)
        for d in docs.get(split, []):
            w.add(d)
        new = [{**s.to_dict(), "generation": g} for s in w.close()]
        first = len(part["shards"])
        part["shards"] += new
        part["tokens"] += sum(s["tokens"] for s in new)
        part["documents"] += sum(s["documents"] for s in new)
        tokens = sum(s["tokens"] for s in new)
        entry["splits"][split] = {"tokens": tokens, "documents": sum(s["documents"] for s in new),
                                  "shards": list(range(first, first + len(new)))}
        entry["live_tokens"][split] = tokens
    manifest["generations"] = [*gens, entry]
    manifest["inputs"] = [*manifest.get("inputs", []), *entry["inputs"]]
    (out_dir / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def check_view(view, docs: list, eos: int = 2) -> None:
    """`view` (a TokenShards) serves exactly `docs`, each followed by EOS: counts, windows across
    shard and segment boundaries, documents, lengths, and IndexError past the end."""
    flat = np.concatenate([np.append(d, eos) for d in docs]).astype(np.int64)
    assert view.num_documents == len(docs) and view.num_tokens == flat.size
    np.testing.assert_array_equal(view.window(0, flat.size), flat)
    for start in range(0, flat.size - 37, 11):  # windows across shard and segment boundaries
        np.testing.assert_array_equal(view.window(start, 37), flat[start:start + 37])
    got = list(view.documents())
    assert len(got) == len(docs)
    for i, (a, b) in enumerate(zip(got, docs, strict=True)):
        np.testing.assert_array_equal(a, np.append(b, eos))
        np.testing.assert_array_equal(view.document(i), np.append(b, eos))
    np.testing.assert_array_equal(view.document_lengths(), [d.size + 1 for d in docs])
    with pytest.raises(IndexError):
        view.window(flat.size - 3, 4)
    with pytest.raises(IndexError):
        view.document(len(docs))
