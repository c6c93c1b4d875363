"""Generations of a prepared corpus (issue 13): where each one's files live and how the manifest
describes them. The append itself is `pipeline/append.py`; docs/data_prep.md has the contract.

Generation 1 is what a plain run writes, at the paths it always used (`work/`, `documents/part-*`,
`shards/<split>-*`). `append=true` adds generation g >= 2:

  work/gen-<g>/           its map outputs, merge record, staged files and stage markers
  documents/gen-<g>/      its documents parts
  shards/gen-<g>/         its token shards (`<split>-NNNNN.{bin,idx}`)
  index/gen-<g>.parquet   one row per document it wrote: id, split, doc (index within the split),
                          tokens, version, source, pmid, text hash, documents part (written once)
  retired/gen-<g>-<split>.u64   the split-wide document indices of earlier generations it retired

`manifest["generations"]` has one entry per generation; the top-level `splits`, `documents`,
`inputs`, `counts`, `dropped`, ... are totals over all of them (`totals`).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

SPLITS = ("train", "val")


def gen_name(generation: int) -> str:
    return f"gen-{generation:05d}"


def gen_work_dir(out_dir: Path, generation: int) -> Path:
    """Work files of a generation: `work/` for generation 1, `work/gen-<g>/` after it."""
    work = Path(out_dir) / "work"
    return work if generation == 1 else work / gen_name(generation)


def index_file(generation: int) -> str:
    return f"index/{gen_name(generation)}.parquet"


def retired_file(generation: int, split: str) -> str:
    return f"retired/{gen_name(generation)}-{split}.u64"


def first_generation(manifest: dict) -> dict:
    """The entry of generation 1, from a manifest that has only it (a plain run's, or an older
    manifest written before generations existed: then its shards, counts and inputs are gen 1's)."""
    splits = {s: {"tokens": int(v["tokens"]), "documents": int(v["documents"]),
                  "shards": list(range(len(v["shards"])))} for s, v in manifest["splits"].items()}
    return {
        "generation": 1,
        "source": (manifest.get("config") or {}).get("source", {}),
        "inputs": manifest.get("inputs", []),
        "counts": manifest.get("counts", {}),
        "dropped": manifest.get("dropped", {}),
        "duplicates": manifest.get("duplicates", {}),
        "bad_records": manifest.get("bad_records", {}),
        "decontaminated_by_eval_set": manifest.get("decontaminated_by_eval_set", {}),
        "quarantined": manifest.get("quarantined", []),
        "splits": splits,
        "retired": {},
        "live_documents": {s: v["documents"] for s, v in splits.items()},
        "live_tokens": {s: v["tokens"] for s, v in splits.items()},
    }


def generations_of(manifest: dict) -> list[dict]:
    """The manifest's generation entries; one built from the top level when it has none."""
    return manifest.get("generations") or [first_generation(manifest)]


def with_generations(manifest: dict) -> dict:
    """A plain run's manifest as a one-generation corpus: every shard tagged `generation: 1`, the
    `generations` list and the live totals (equal to the physical ones: nothing is retired)."""
    for v in manifest["splits"].values():
        for s in v["shards"]:
            s["generation"] = 1
    manifest["generations"] = [first_generation(manifest)]
    manifest["live"] = live_totals(manifest["generations"])
    return manifest


def live_totals(generations: list[dict]) -> dict:
    """{split: {"documents", "tokens"}} served by the reader: the live documents of every generation."""
    out = {}
    for split in SPLITS:
        out[split] = {"documents": sum(int(g.get("live_documents", {}).get(split, 0)) for g in generations),
                      "tokens": sum(int(g.get("live_tokens", {}).get(split, 0)) for g in generations)}
    return out


def totals(generations: list[dict]) -> dict:
    """The top-level keys that sum the generations: inputs, counts, drops by reason, decontaminated
    ids, quarantined files, live documents and tokens."""
    counts: Counter = Counter()
    dropped: Counter = Counter()
    duplicates: Counter = Counter()
    bad: Counter = Counter()
    decon: dict[str, set[str]] = {}
    inputs: list[dict] = []
    quarantined: list[dict] = []
    for g in generations:
        counts.update({k: v for k, v in g.get("counts", {}).items() if isinstance(v, int)})
        dropped.update(g.get("dropped", {}))
        duplicates.update(g.get("duplicates", {}))
        bad.update(g.get("bad_records", {}))
        for name, ids in g.get("decontaminated_by_eval_set", {}).items():
            decon.setdefault(name, set()).update(ids)
        inputs += g.get("inputs", [])
        quarantined += g.get("quarantined", [])
    by_set = {k: sorted(v) for k, v in sorted(decon.items())}
    return {"inputs": inputs, "counts": dict(sorted(counts.items())), "dropped": dict(sorted(dropped.items())),
            "duplicates": dict(sorted(duplicates.items())), "bad_records": dict(sorted(bad.items())),
            "decontaminated_by_eval_set": by_set,
            "decontaminated_ids": sorted({i for ids in by_set.values() for i in ids}),
            "quarantined": quarantined, "live": live_totals(generations)}
