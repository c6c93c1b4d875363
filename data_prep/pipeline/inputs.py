"""Which input files an out_dir's corpus was built from, and the check that a rerun uses the same.

The config hash says how the corpus is made; the input set says from what: every input file's
load order, name, size and sha256, plus the names of the files the source could not deliver
(a 404, a wrong md5, a link it did not follow). The merge stage records it in `work/merge.json`,
and every later stage's marker records what it was built from (documents -> tokenizer -> shards),
so a stage is reused only for the same upstream outputs.

A rerun whose inputs differ from a finished merge's is refused with one line saying what changed,
twice: at once from the listing (order, name, size: no file is read), and at the merge from the
checksums (a same-size edit). `overwrite=true` rebuilds documents, tokenizer and shards from the
current inputs instead, reusing the map output of every file that did not change. Either way the
manifest never lists inputs that the documents do not come from.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from data_prep.errors import PrepError
from data_prep.pipeline.markers import is_done, read_json
from data_prep.sources import InputFile, resolve_inputs

MERGE_INFO = Path("work") / "merge.json"


class InputsChanged(PrepError):
    """The out_dir holds a corpus built from other input files than this run's."""


def resolve_input_files(cfg) -> tuple[list[InputFile], list[dict]]:
    """(input files of `cfg.source` in load order, files the source itself quarantined)."""
    quarantine: list[PrepError] = []
    inputs = resolve_inputs(cfg.source, cfg.source_cache_dir, quarantine=quarantine)
    inputs = sorted(inputs, key=lambda f: (f.order, str(f.path)))
    quarantined = [{"path": str(getattr(e, "path", "")), "reason": getattr(e, "reason", str(e))} for e in quarantine]
    return inputs, quarantined


def input_entries(records: list[dict], source_failures: list[dict]) -> list[dict]:
    """The input set: map inputs as (order, name, size, sha256), the source's failures by name.

    Names, not paths: the same files moved to another folder are the same inputs."""
    entries = [{"order": r["order"], "name": Path(r["path"]).name, "size": r["size"], "sha256": r["sha256"]}
               for r in records]
    entries += [{"failed": Path(str(q["path"])).name} for q in source_failures]
    return entries


def input_set_sha256(entries: list[dict]) -> str:
    return hashlib.sha256(json.dumps(entries, sort_keys=True).encode("utf-8")).hexdigest()


def _key(entry: dict, with_sha: bool) -> tuple:
    if "failed" in entry:
        return ("failed", entry["failed"])
    base = (entry["order"], entry["name"], entry["size"])
    return (*base, entry.get("sha256")) if with_sha else base


def describe_change(old: list[dict], new: list[dict], with_sha: bool) -> str | None:
    """'2 added, 0 removed, 1 changed (first: ...)' or None when the sets are equal."""
    before = {_key(e, with_sha) for e in old}
    after = {_key(e, with_sha) for e in new}
    if before == after:
        return None
    by_name_old = {k[1] for k in before - after}
    by_name_new = {k[1] for k in after - before}
    changed = by_name_old & by_name_new
    added = sorted(by_name_new - changed, key=str)
    removed = sorted(by_name_old - changed, key=str)
    first = next(iter(added or removed or sorted(changed, key=str)), None)
    what = "added" if added else "removed" if removed else "changed"
    return (f"{len(added)} added, {len(removed)} removed, {len(changed)} changed or moved in the load order"
            + (f"; first {what}: {first}" if first is not None else ""))


def inputs_changed(out_dir: Path, change: str) -> InputsChanged:
    return InputsChanged(
        f"{out_dir}: its corpus was built from other input files ({change}); rerunning into it would give a "
        "manifest that disagrees with the documents. Use a new out_dir, pass append=true to add the new files "
        "as a new generation, or pass overwrite=true to rebuild documents, tokenizer and shards from the "
        "current inputs")


def recorded_inputs(out_dir: Path) -> list[dict] | None:
    """The input set of the finished merge in `out_dir`, or None when there is none."""
    path = Path(out_dir) / MERGE_INFO
    if not is_done(path):
        return None
    inputs = read_json(path).get("inputs")
    return inputs if isinstance(inputs, list) else None  # an older out_dir: the merge stage says so


def check_listed_inputs(out_dir: Path, inputs: list[InputFile], source_failures: list[dict]) -> str | None:
    """Compare the files the source lists now with the finished merge's input set (order, name and
    size, no file read); returns the change, None when equal or when no merge has finished."""
    old = recorded_inputs(out_dir)
    if old is None:
        return None
    now = [{"order": f.order, "name": Path(f.path).name, "size": _size(Path(f.path))} for f in inputs]
    now += [{"failed": Path(str(q["path"])).name} for q in source_failures]
    return describe_change(old, now, with_sha=False)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1
