"""`append=true`: add a source's new input files to a finished corpus as generation g >= 2.

    python -m data_prep source=pubmed_updates source.after=corpus out_dir=<corpus> append=true

The corpus's own config (`manifest["config"]`) governs everything but the source and the run keys:
a setting not given on the command line is taken from it (so the command above is the whole weekly
command whatever the first run set), one given with another value is refused naming the key
(`corpus_config`), and the corpus's tokenizer is used as it is (its sha256 checked). Files of generation g: pipeline/generations.py. Stages, each redone
whole unless its marker records the same upstream outputs, like a plain run's:

  inputs   the source's files minus those already in the corpus (same name and sha256, or the
           same bytes under another name); a known name with other bytes is refused; nothing
           new: a no-op that says so. New PubMed files must be newer (NCBI number) than the corpus's.
  map      work/gen-<g>/map/ (stage_map, as in a plain run)
  index    generation 1's index, by the first append only, from its documents and shards (staged)
  merge    versions (stage_merge.resolve_versions) -> every earlier live copy of an id the new
           files touch is retired (a newer record: `revised`; a filtered-out one: `filtered`; a
           DeleteCitation: `deleted`) -> dedup against the live corpus (an existing document
           always wins an exact duplicate; the cross-source policy may retire an existing
           abstract for a new full text) -> decontamination -> split by id -> staged documents
           and retired lists under work/gen-<g>/
  shards   shards/gen-<g>/ (stage_tokenize.run_shards with the corpus's tokenizer)
  index    work/gen-<g>/index.parquet
  rewrite  the earlier documents parts holding retired ids, without those rows (staged)
  commit   work/gen-<g>/commit.json (the moves and the new manifest), then the moves, then
           manifest.json. A later run finishes a commit it finds interrupted before anything else.

Before the commit an append writes only under work/gen-<g>/ and shards/gen-<g>/, and no existing
shard file is ever written: a kill before it leaves the previous generation exactly as it was; a
kill during its few renames leaves the previous manifest and every shard in place (documents/ may
then hold some new parts) until the next run finishes the commit. Either way the rerun produces
the same bytes.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tokenizers import Tokenizer
from tqdm import tqdm

from common.atomic import atomic_path, atomic_write_bytes, atomic_write_json, remove_stale_temps
from common.config import ConfigError
from data_prep.config import (
    PrepConfig,
    Stage,
    build_config,
    default_hashed_config,
    hashed_config,
    override_keys,
)
from data_prep.errors import PrepError
from data_prep.pipeline.generations import (
    SPLITS,
    gen_name,
    gen_work_dir,
    generations_of,
    index_file,
    retired_file,
    totals,
)
from data_prep.pipeline.inputs import InputsChanged, input_entries, input_set_sha256, resolve_input_files
from data_prep.pipeline.manifest import write_manifest
from data_prep.pipeline.markers import (
    is_done,
    mark_done,
    marker_path,
    pause_point,
    read_json,
    records_sha256,
    sha256_file,
)
from data_prep.pipeline.stage_map import map_outputs, prune_map_outputs, run_map
from data_prep.pipeline.stage_merge import (
    DocumentsWriter,
    extra_eval_sources,
    iter_survivors,
    resolve_versions,
    write_documents_table,
)
from data_prep.pipeline.stage_tokenize import run_shards
from data_prep.pipeline.summary import length_histogram, print_generation_summary
from data_prep.sources import InputFile
from data_prep.sources.config import AFTER_CORPUS, PubmedSource
from data_prep.sources.local import order_key
from data_prep.structured import plain
from data_prep.text.decontam import load_eval_sets
from data_prep.text.dedup import DedupConfig, DedupKey, cross_source_rule, dedup_key, pmid_number, text_hash
from data_prep.tokens.shards import IDX_DTYPE, split_of
from data_prep.tokens.tokenizer import TOKENIZER_SCHEMAS, load_tokenizer

log = logging.getLogger(__name__)

# Why an earlier document is retired, from the kind of the last event of its id in the new files.
RETIRE_REASON = {"doc": "revised", "drop": "filtered", "deletion": "deleted"}
# One row per document a generation wrote (index/gen-<g>.parquet): what later appends need about it
# without re-reading its text: where it is (split + index within the split), its tokens, dedup key.
INDEX_SCHEMA = pa.schema([("id", pa.string()), ("split", pa.string()), ("doc", pa.int64()), ("tokens", pa.int64()),
                          ("version", pa.int32()), ("source", pa.string()), ("pmid", pa.string()),
                          ("hash", pa.binary(16)), ("part", pa.string())])


def say(msg: str) -> None:
    """A line the user must see whatever `summary.print` says (stdout, like the summary)."""
    print(f"data_prep: {msg}", flush=True)


# ---- the corpus appended to -------------------------------------------------------------------


@dataclass
class Corpus:
    out: Path
    manifest: dict
    manifest_sha256: str  # what every stage of this append was computed against
    generations: list[dict]

    @property
    def next_generation(self) -> int:
        return int(self.generations[-1]["generation"]) + 1

    def documents_in(self, split: str) -> int:
        """Documents of `split` in all shards (retired ones included): the numbering's next index."""
        return int(self.manifest["splits"].get(split, {}).get("documents", 0))


def no_corpus(out: Path) -> PrepError:
    return PrepError(f"{out}: no finished corpus to append to (no manifest.json): finish the first run first "
                     "(run the same command without append=true), then append")


def load_corpus(out: Path) -> Corpus:
    path = Path(out) / "manifest.json"
    if not path.is_file():
        raise no_corpus(Path(out))
    data = path.read_bytes()
    manifest = json.loads(data)
    return Corpus(Path(out), manifest, hashlib.sha256(data).hexdigest(), generations_of(manifest))


_ABSENT = object()


def _differences(old: Any, new: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any, Any]]:
    """(path, old value, new value) of every leaf where two nested mappings differ, in sorted key order."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for k in sorted(set(old) | set(new))
                for d in _differences(old.get(k, _ABSENT), new.get(k, _ABSENT), (*path, k))]
    return [] if old == new else [(path, old, new)]


def _lookup(d: Any, path: tuple[str, ...]) -> Any:
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return _ABSENT
        d = d[k]
    return d


def _shown(value: Any) -> str:
    return "not set" if value is _ABSENT else repr(value)


def _key(path: tuple[str, ...]) -> str:
    return ".".join(path)


def _stored_config(manifest: dict, out: Path) -> dict:
    old = manifest.get("config")
    if not isinstance(old, dict):
        raise PrepError(f"{out}/manifest.json records no config (an older version wrote it): rebuild the corpus "
                        "with this version before appending to it")
    return {k: v for k, v in old.items() if k != "source"}


def _refused(key: str, now: Any, was: Any, out: Path) -> ConfigError:
    return ConfigError(key, f"is {_shown(now)} here but {_shown(was)} in the corpus in {out}: an append takes every "
                            "setting but the source and the run keys from the corpus's config (cleaning, filters, "
                            "dedup, decontamination, split, tokenizer, shards); leave it off the command line, or give the "
                            "corpus's value")


def check_append_config(cfg: PrepConfig, manifest: dict, out: Path) -> None:
    """ConfigError naming the first key (other than the source) whose value differs from the corpus's."""
    new = hashed_config(cfg)
    diffs = _differences(_stored_config(manifest, out), {k: v for k, v in new.items() if k != "source"})
    if diffs:
        path, was, now = diffs[0]
        raise _refused(_key(path), now, was, out)


def _user_set(overrides: Sequence[str] | None, new: dict):
    """Whether the user set a key (path): named by one of Hydra's command-line `overrides` (or a
    section above or below it); with overrides=None (a config given to `run(cfg)`, which keeps no
    record of what its caller set), when its value differs from the schema default."""
    if overrides is not None:
        keys = [tuple(k.split(".")) for k in override_keys(overrides)]
        return lambda path: any(path[:len(k)] == k or k[:len(path)] == path for k in keys)
    defaults = default_hashed_config()
    return lambda path: _lookup(defaults, path) != _lookup(new, path)


def _corpus_tokenizer_config(stored: dict, manifest: dict, out: Path) -> dict:
    """The corpus's tokenizer section whole (another tokenizer kind than this config's); a pretrained
    one's path, not recorded, is the corpus's tokenizer file, which an append encodes with anyway."""
    tok = dict(stored.get("tokenizer") or {})
    schema = TOKENIZER_SCHEMAS.get(tok.get("kind"))
    if schema is not None and any(f.name == "path" for f in dataclasses.fields(schema)):
        tok["path"] = str(out / manifest["tokenizer"]["path"])
    return tok


def corpus_config(cfg: PrepConfig, manifest: dict, out: Path, overrides: Sequence[str] | None = None) -> PrepConfig:
    """The config an append runs with: the corpus's (`manifest["config"]`) for every key but the source
    and the run keys, unless the user set it; a key the user set to another value is refused
    (ConfigError naming it). Which keys the user set: `_user_set`. The result's hashed config (the
    source aside) is the corpus's, so the corpus keeps one config hash across generations."""
    stored = _stored_config(manifest, out)
    new = hashed_config(cfg)
    diffs = _differences(stored, {k: v for k, v in new.items() if k != "source"})
    if not diffs:
        return cfg
    user_set = _user_set(overrides, new)
    for path, was, now in diffs:
        if user_set(path):
            raise _refused(_key(path), now, was, out)
    values = plain(cfg)
    taken = [f"{_key(path)}={_shown(was)}" for path, was, _ in diffs]
    if any(path == ("tokenizer", "kind") for path, _, _ in diffs):  # another schema: the corpus's whole section
        values["tokenizer"] = _corpus_tokenizer_config(stored, manifest, out)
        diffs = [d for d in diffs if d[0][0] != "tokenizer"]
    for path, was, now in diffs:
        if was is _ABSENT:
            raise ConfigError(_key(path), f"is {_shown(now)} here but the corpus in {out} does not record it (an "
                                          "older version built it), so its value there is unknown: rebuild the "
                                          "corpus with this version to append to it")
        parent = values
        for k in path[:-1]:
            parent = parent[k]
        parent[path[-1]] = was
    log.info("append: from the corpus's config: %s", ", ".join(taken))
    return build_config(values)


def append_config(cfg: PrepConfig, overrides: Sequence[str] | None = None) -> PrepConfig:
    """`corpus_config` for the corpus in cfg.out_dir (reads only): what `python -m data_prep ...
    append=true` checks before Hydra writes into out_dir, and then runs with."""
    corpus = load_corpus(cfg.out_path)
    return corpus_config(cfg, corpus.manifest, cfg.out_path, overrides)


def corpus_tokenizer(corpus: Corpus) -> tuple[Tokenizer, str]:
    info = corpus.manifest["tokenizer"]
    path = corpus.out / info["path"]
    if not path.is_file():
        raise PrepError(f"{path}: the corpus's tokenizer is missing; an append encodes with it as it is, restore it")
    sha = sha256_file(path)
    if sha != info["sha256"]:
        raise PrepError(f"{path}: sha256 {sha[:12]} differs from the manifest's {info['sha256'][:12]}: the corpus's "
                        "tokenizer was changed after it was built; restore it (an append never retrains it)")
    return load_tokenizer(path), sha


# ---- which inputs are new -----------------------------------------------------------------------


def _ncbi(name: str) -> tuple[int, int] | None:
    """(release year, file number) of an NCBI-named PubMed file, None for any other name."""
    k = order_key(name)
    return (k[1], k[2]) if k[0] == 0 else None


def newest_ncbi(corpus: Corpus) -> tuple[tuple[int, int], str] | None:
    """((year, number), name) of the newest NCBI-named PubMed file in the corpus, None if it has none."""
    named = [(k, n) for n in (Path(r["path"]).name for g in corpus.generations for r in g.get("inputs", []))
             if (k := _ncbi(n)) is not None]
    return max(named) if named else None


def append_source(cfg: PrepConfig, corpus: Corpus) -> PrepConfig:
    """`source.after=corpus` replaced by the newest NCBI file number the corpus holds."""
    src = cfg.source
    if not isinstance(src, PubmedSource) or src.after != AFTER_CORPUS:
        return cfg
    newest = newest_ncbi(corpus)
    if newest is None:
        raise ConfigError("source.after", f"'{AFTER_CORPUS}': the corpus in {corpus.out} holds no NCBI-named PubMed "
                                          "file (pubmedYYnNNNN.xml.gz) to continue from; give a file number instead")
    log.info("source.after=corpus: the corpus's newest PubMed file is %s: selecting files numbered above %d",
             newest[1], newest[0][1])
    return dataclasses.replace(cfg, source=dataclasses.replace(src, after=newest[0][1]))


@dataclass
class InputPlan:
    new: list[InputFile]
    known: int  # listed files that are in the corpus already


def plan_inputs(corpus: Corpus, inputs: list[InputFile]) -> InputPlan:
    """Split the listed files into new ones and ones the corpus holds (by name and sha256). Only a
    file whose name or size is known is read for its checksum here (the map stage hashes the rest)."""
    by_name: dict[str, tuple[int, dict]] = {}
    by_sha: dict[str, tuple[int, str]] = {}
    sizes: set[int] = set()
    for g in corpus.generations:
        for rec in g.get("inputs", []):
            name = Path(rec["path"]).name
            by_name.setdefault(name, (int(g["generation"]), rec))
            if rec.get("sha256"):
                by_sha.setdefault(rec["sha256"], (int(g["generation"]), name))
                sizes.add(rec["size"])
    new: list[InputFile] = []
    known = 0
    for f in inputs:
        path = Path(f.path)
        named = by_name.get(path.name)
        size = path.stat().st_size if path.is_file() else -1
        if size >= 0 and (named is not None or size in sizes):
            sha = sha256_file(path)
            if sha in by_sha:
                known += 1
                gen, was = by_sha[sha]
                if was != path.name:
                    log.warning("%s: the same bytes as %s (generation %d) already in the corpus: not read again",
                                path, was, gen)
                continue
            if named is not None:
                gen, rec = named
                raise InputsChanged(
                    f"{path}: an input named {path.name} is already in the corpus (generation {gen}) with sha256 "
                    f"{str(rec.get('sha256'))[:12]}, this file's is {sha[:12]}: an append never re-reads a known "
                    "input; restore the original file, or give a new file a new name")
        new.append(f)
    newest = newest_ncbi(corpus)
    for f in new:
        k = _ncbi(Path(f.path).name)
        if newest is not None and k is not None and k <= newest[0]:
            raise PrepError(f"{f.path}: PubMed file {Path(f.path).name} is not newer than {newest[1]}, already in "
                            "the corpus: generations apply in load order, so its records would replace newer "
                            "versions; build a corpus from all these files in one run instead (a new out_dir)")
    return InputPlan(new, known)


# ---- document indexes ---------------------------------------------------------------------------


def _current(marker: Path, upstream: dict) -> bool:
    return marker.exists() and all(read_json(marker).get(k) == v for k, v in upstream.items())


def split_lengths(out: Path, shards: dict[str, list[dict]]) -> dict[str, np.ndarray]:
    """Tokens (EOS included) of every document of each split, in order, from the shards' .idx files."""
    lengths = {}
    for split in SPLITS:
        parts = [np.diff(np.concatenate([[0], np.fromfile(out / s["idx"], dtype=IDX_DTYPE).astype(np.int64)]))
                 for s in shards.get(split, [])]
        lengths[split] = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return lengths


def write_index(parts: list[tuple[Path, str]], lengths: dict[str, np.ndarray], base: dict[str, int], dest: Path,
                rel: str, progress: bool) -> dict:
    """index rows of the documents in `parts` ((file to read, the part's path in the corpus)), whose
    tokens are `lengths` and whose split-wide numbering starts at `base`; returns its manifest entry."""
    pos = dict.fromkeys(SPLITS, 0)
    with atomic_path(dest) as tmp:
        writer = pq.ParquetWriter(tmp, INDEX_SCHEMA, compression="zstd", write_statistics=False)
        try:
            for read_path, part in tqdm(parts, desc=f"index {Path(rel).stem}", unit="part", disable=not progress):
                pf = pq.ParquetFile(read_path)
                for batch in pf.iter_batches(batch_size=65_536,
                                             columns=["id", "text", "split", "version", "source", "pmid"]):
                    b = batch.to_pydict()
                    rows: dict[str, list] = {k: [] for k in INDEX_SCHEMA.names}
                    for i, split in enumerate(b["split"]):
                        k = pos[split]
                        if k >= lengths[split].size:
                            raise PrepError(f"{read_path}: more {split} documents than the shards hold; the corpus "
                                            "is inconsistent, rebuild it")
                        rows["doc"].append(base[split] + k)
                        rows["tokens"].append(int(lengths[split][k]))
                        rows["hash"].append(text_hash(b["text"][i]))
                        pos[split] = k + 1
                    for c in ("id", "split", "version", "source", "pmid"):
                        rows[c] = b[c]
                    rows["part"] = [part] * len(b["id"])
                    writer.write_table(pa.Table.from_pydict(rows, schema=INDEX_SCHEMA))
        finally:
            writer.close()
    for split in SPLITS:
        if pos[split] != lengths[split].size:
            raise PrepError(f"{dest}: {pos[split]} {split} documents but the shards hold {lengths[split].size}; the "
                            "corpus is inconsistent, rebuild it")
    return {"path": rel, "sha256": sha256_file(dest), "documents": sum(pos.values())}


def first_index_staged(corpus: Corpus) -> Path:
    """Where the first append stages generation 1's index (its commit moves it to index/)."""
    return gen_work_dir(corpus.out, corpus.next_generation) / f"index-{gen_name(1)}.parquet"


def first_index(corpus: Corpus, progress: bool) -> dict:
    """index/gen-00001.parquet (staged) from generation 1's documents (checked against the
    manifest) and shards."""
    m = corpus.manifest
    dest = first_index_staged(corpus)
    upstream = {"documents_sha256": records_sha256(m["documents"]), "shards_sha256": records_sha256(
        {s: [x["sha256"] for x in v["shards"]] for s, v in m["splits"].items()})}
    if _current(marker_path(dest), upstream):
        return read_json(marker_path(dest))["index"]
    for d in m["documents"]:
        p = corpus.out / d["path"]
        if not p.is_file() or sha256_file(p) != d["sha256"]:
            raise PrepError(f"{p}: missing or changed since manifest.json was written; the corpus cannot be appended "
                            "to (rebuild it, or restore the file)")
    lengths = split_lengths(corpus.out, {s: v["shards"] for s, v in m["splits"].items()})
    info = write_index([(corpus.out / d["path"], d["path"]) for d in m["documents"]], lengths,
                       dict.fromkeys(SPLITS, 0), dest, index_file(1), progress)
    mark_done(dest, {**upstream, "index": info})
    pause_point("index")
    return info


def ensure_indexes(corpus: Corpus, progress: bool) -> dict[int, tuple[dict, Path]]:
    """The index of every earlier generation ({generation: (manifest entry, file to read)});
    generation 1's is built the first time a corpus is appended to (later generations write theirs)."""
    out: dict[int, tuple[dict, Path]] = {}
    for entry in corpus.generations:
        g = int(entry["generation"])
        info = entry.get("index")
        if info:
            p = corpus.out / info["path"]
            if not p.is_file() or sha256_file(p) != info["sha256"]:
                raise PrepError(f"{p}: generation {g}'s document index is missing or differs from manifest.json; "
                                "the corpus cannot be appended to (restore the file, or rebuild the corpus)")
            out[g] = (info, p)
        elif g == 1 and len(corpus.generations) == 1:
            out[g] = (first_index(corpus, progress), first_index_staged(corpus))
        else:
            raise PrepError(f"{corpus.out}/manifest.json: generation {g} lists no document index; the corpus cannot "
                            "be appended to (rebuild it)")
    return out


def retired_so_far(corpus: Corpus) -> dict[str, np.ndarray]:
    """Per split, the sorted document indices every earlier generation retired (files checked)."""
    found: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for g in corpus.generations:
        for split, entry in (g.get("retired") or {}).items():
            p = corpus.out / entry["file"]
            raw = p.read_bytes() if p.is_file() else None
            if raw is None or hashlib.sha256(raw).hexdigest() != entry["sha256"]:
                raise PrepError(f"{p}: generation {g['generation']}'s retired list is missing or differs from "
                                "manifest.json; restore it (the corpus cannot be appended to without it)")
            found[split].append(np.frombuffer(raw, dtype=IDX_DTYPE).astype(np.int64))
    return {s: np.unique(np.concatenate(v)) if v else np.zeros(0, dtype=np.int64) for s, v in found.items()}


# ---- the merge of the new generation -----------------------------------------------------------


class Retire(NamedTuple):
    owner: int  # the generation that wrote the document
    split: str
    doc: int
    tokens: int
    id: str
    part: str
    reason: str


@dataclass
class Scan:
    """What the live corpus says about the new documents (one streaming pass over the indexes)."""

    retire: list[Retire] = field(default_factory=list)
    existing_hashes: set[bytes] = field(default_factory=set)  # texts of new documents the corpus has live
    covered: set[int] = field(default_factory=set)  # PMIDs of new losing-source documents a live winner has


def scan_corpus(indexes: dict[int, tuple[dict, Path]], retired: dict[str, np.ndarray], final: dict[str, str],
                keys: list[DedupKey], dedup: DedupConfig, progress: bool) -> Scan:
    """Retire the live documents of ids the new files touch; find the live documents the new
    ones duplicate. Memory holds the new generation's keys, not the corpus's."""
    rule = cross_source_rule(dedup.cross_source) if dedup.enabled else None
    new_hashes = {k.hash for k in keys} if dedup.enabled and dedup.exact else set()
    win = {p for k in keys if rule and k.source == rule[0] and (p := pmid_number(k.pmid)) is not None}
    lose = {p for k in keys if rule and k.source == rule[1] and (p := pmid_number(k.pmid)) is not None}
    id_set = pa.array(sorted(final), type=pa.string())
    hash_set = pa.array(sorted(new_hashes), type=pa.binary(16))
    pmid_set = pa.array(sorted(str(p) for p in win | lose), type=pa.string())
    scan = Scan()
    if not (len(id_set) or len(hash_set) or len(pmid_set)):
        return scan  # the new files hold no record at all: nothing in the corpus can match
    total = sum(int(info["documents"]) for info, _ in indexes.values())
    bar = tqdm(total=total, desc="scan corpus", unit="doc", disable=not progress)
    for g, (_, path) in sorted(indexes.items()):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=65_536):
            bar.update(batch.num_rows)
            hit = pc.is_in(batch.column("id"), value_set=id_set)
            if len(hash_set):
                hit = pc.or_(hit, pc.is_in(batch.column("hash"), value_set=hash_set))
            if len(pmid_set):
                hit = pc.or_(hit, pc.is_in(batch.column("pmid"), value_set=pmid_set))
            for r in batch.filter(hit).to_pylist():
                gone = retired[r["split"]]
                k = int(np.searchsorted(gone, r["doc"]))
                if k < gone.size and gone[k] == r["doc"]:
                    continue  # retired by an earlier generation already
                reason = RETIRE_REASON.get(final.get(r["id"], ""))
                p = pmid_number(r["pmid"])
                if reason is None and rule and r["source"] == rule[1] and p in win:
                    reason = rule[2]  # a new winning-source copy of its PMID (e.g. the full text)
                if reason is not None:
                    scan.retire.append(Retire(g, r["split"], r["doc"], r["tokens"], r["id"], r["part"], reason))
                    continue
                if rule and r["source"] == rule[0] and p in lose:
                    scan.covered.add(p)
                if r["hash"] in new_hashes:
                    scan.existing_hashes.add(r["hash"])
    bar.close()
    return scan


def new_drops(keys: list[DedupKey], scan: Scan, dedup: DedupConfig) -> dict[str, str]:
    """id -> dedup reason for the new documents: data_prep.text.dedup's rules over the live corpus
    plus the new documents, where a live document (already in shards) always stays."""
    drops: dict[str, str] = {}
    if not dedup.enabled:
        return drops
    rule = cross_source_rule(dedup.cross_source)
    covered = scan.covered | {p for k in keys if rule and k.source == rule[0] and (p := pmid_number(k.pmid)) is not None}
    group: bytes | None = None
    kept: str | None = None
    for k in sorted(keys):  # by text hash, then id_rank: the first of a group stays
        if rule and k.source == rule[1] and pmid_number(k.pmid) in covered:
            drops[k.id] = rule[2]
        elif not dedup.exact:
            continue
        elif k.hash in scan.existing_hashes:
            drops[k.id] = "duplicate_text"
        elif k.hash != group:
            group, kept = k.hash, k.id
        elif k.id != kept:
            drops[k.id] = "duplicate_text"
    return drops


def write_retired(work: Path, g: int, retire: list[Retire]) -> tuple[dict, dict, dict]:
    """Staged retired lists; (manifest entries by split, {part: ids to remove}, {owner: {split: counts}})."""
    entries: dict[str, dict] = {}
    rows: dict[str, list[str]] = {}
    owners: dict[str, dict] = {}
    for split in SPLITS:
        items = sorted((r for r in retire if r.split == split), key=lambda r: r.doc)
        if not items:
            continue
        docs = np.array([r.doc for r in items], dtype=IDX_DTYPE)
        if np.any(np.diff(docs.astype(np.int64)) <= 0):
            raise PrepError(f"{work}: a document was retired twice; the corpus indexes are inconsistent, rebuild it")
        data = docs.tobytes()
        atomic_write_bytes(work / retired_file(g, split), data)
        entries[split] = {"file": retired_file(g, split), "documents": len(items),
                          "tokens": int(sum(r.tokens for r in items)), "sha256": hashlib.sha256(data).hexdigest(),
                          "reasons": dict(sorted(Counter(r.reason for r in items).items()))}
        for r in items:
            rows.setdefault(r.part, []).append(r.id)
            o = owners.setdefault(str(r.owner), {}).setdefault(split, {"documents": 0, "tokens": 0})
            o["documents"] += 1
            o["tokens"] += int(r.tokens)
    return entries, {p: sorted(ids) for p, ids in sorted(rows.items())}, owners


def final_part(g: int, staged: str) -> str:
    return f"documents/{gen_name(g)}/{Path(staged).name}"


def run_generation_merge(cfg: PrepConfig, corpus: Corpus, g: int, map_files: list[tuple[int, Path]],
                         inputs: list[dict], indexes: dict[int, tuple[dict, Path]]) -> dict:
    """Versions -> retirements -> dedup against the live corpus -> decontamination -> split, staged
    under work/gen-<g>/ (documents/, retired/); returns (and records) what it did."""
    out = cfg.out_path
    work = gen_work_dir(out, g)
    info_path = work / "merge.json"
    upstream = {"inputs_sha256": input_set_sha256(inputs), "manifest_sha256": corpus.manifest_sha256}
    if _current(marker_path(info_path), upstream):
        return read_json(info_path)
    marker_path(info_path).unlink(missing_ok=True)
    for d in (work / "documents", work / "retired"):
        if d.exists():
            shutil.rmtree(d)  # leftovers of a killed merge: redo it whole
    res = resolve_versions(map_files, keep_ids=True)
    assert res.final is not None
    keys = [dedup_key(doc) for doc in iter_survivors(map_files, res)]
    scan = scan_corpus(indexes, retired_so_far(corpus), res.final, keys, cfg.dedup, cfg.progress)
    drops = new_drops(keys, scan, cfg.dedup)
    del keys
    evals = load_eval_sets(cfg.decontam, extra=extra_eval_sources(cfg))
    writer = DocumentsWriter(work / "documents", cfg.documents.rows_per_file, cfg.documents.row_group_size,
                             cfg.documents.compression.value, rel_to=out)
    dup_reasons: Counter = Counter()
    decontaminated: dict[str, list[str]] = {}
    per_split: Counter = Counter()
    bar = tqdm(total=sum(len(v) for v in res.winners.values()), desc="dedup+decontam", unit="doc",
               disable=not cfg.progress)
    for doc in iter_survivors(map_files, res):
        bar.update(1)
        reason = drops.get(doc.id)
        if reason is not None:
            dup_reasons[reason] += 1
            continue
        hit = evals.match(doc)
        if hit is not None:
            decontaminated.setdefault(hit.removeprefix("eval:"), []).append(doc.id)
            continue
        split = split_of(doc.id, cfg.split.val_fraction)  # by id only: a revised document keeps its split
        per_split[split] += 1
        writer.add(doc, split)
    bar.close()
    parts = writer.close()
    retired, retire_rows, retired_from = write_retired(work, g, scan.retire)
    counts = dict(res.counts)
    counts.update(duplicates=sum(dup_reasons.values()), decontaminated=sum(len(v) for v in decontaminated.values()),
                  kept=sum(per_split.values()), train_documents=per_split["train"], val_documents=per_split["val"],
                  retired=len(scan.retire))
    info = {"counts": counts, "dropped": dict(sorted(res.dropped.items())),
            "duplicates": dict(sorted(dup_reasons.items())),
            "decontaminated": {k: sorted(v) for k, v in sorted(decontaminated.items())},
            "decontam_summary": json.loads(json.dumps(evals.summary(), default=str)), "documents": parts,
            "retired": retired, "retire_rows": retire_rows, "retired_from": retired_from, "inputs": inputs,
            **upstream}
    atomic_write_json(info_path, info)
    mark_done(info_path, upstream)
    pause_point("merge")
    return info


# ---- after the shards: the new index, the rewritten parts, the commit ----------------------------


def run_generation_index(cfg: PrepConfig, corpus: Corpus, g: int, merge: dict, shards: dict) -> dict:
    """work/gen-<g>/index.parquet (moved to index/gen-<g>.parquet by the commit); its manifest entry."""
    out = cfg.out_path
    staged = gen_work_dir(out, g) / "index.parquet"
    upstream = {"documents_sha256": records_sha256(merge["documents"]), "shards_sha256": records_sha256(shards),
                "manifest_sha256": corpus.manifest_sha256}
    if _current(marker_path(staged), upstream):
        return read_json(marker_path(staged))["index"]
    marker_path(staged).unlink(missing_ok=True)
    info = write_index([(out / p["path"], final_part(g, p["path"])) for p in merge["documents"]],
                       split_lengths(out, shards), {s: corpus.documents_in(s) for s in SPLITS}, staged,
                       index_file(g), cfg.progress)
    mark_done(staged, {**upstream, "index": info})
    pause_point("index")
    return info


def run_rewrite(cfg: PrepConfig, corpus: Corpus, g: int, merge: dict) -> dict[str, dict]:
    """The earlier documents parts that hold retired ids, without those rows, staged under
    work/gen-<g>/rewrite/; {part path: {"rows", "sha256"}} of the new versions."""
    out = cfg.out_path
    work = gen_work_dir(out, g)
    record = work / "rewrite.json"
    upstream = {"retire_sha256": records_sha256(merge["retire_rows"]), "manifest_sha256": corpus.manifest_sha256}
    if _current(marker_path(record), upstream):
        return read_json(record)["parts"]
    marker_path(record).unlink(missing_ok=True)
    if (work / "rewrite").exists():
        shutil.rmtree(work / "rewrite")
    listed = {d["path"]: d for d in corpus.manifest["documents"]}
    compression = None if cfg.documents.compression.value == "none" else cfg.documents.compression.value
    parts: dict[str, dict] = {}
    for part, ids in tqdm(sorted(merge["retire_rows"].items()), desc="retire", unit="part", disable=not cfg.progress):
        src = out / part
        if part not in listed or not src.is_file() or sha256_file(src) != listed[part]["sha256"]:
            raise PrepError(f"{src}: missing or changed since manifest.json was written; an append rewrites it "
                            "without the retired documents, so restore it (or rebuild the corpus)")
        table = pq.read_table(src)
        kept = table.filter(pc.invert(pc.is_in(table.column("id"), value_set=pa.array(ids, type=pa.string()))))
        if table.num_rows - kept.num_rows != len(ids):
            raise PrepError(f"{src}: holds {table.num_rows - kept.num_rows} of the {len(ids)} documents the index "
                            "places in it; the corpus is inconsistent, rebuild it")
        dest = work / "rewrite" / part
        write_documents_table(kept, dest, cfg.documents.row_group_size, compression)
        parts[part] = {"rows": kept.num_rows, "sha256": sha256_file(dest)}
        pause_point("rewrite")
    atomic_write_json(record, {"parts": parts})
    mark_done(record, upstream)
    return parts


def appended_manifest(cfg: PrepConfig, corpus: Corpus, g: int, merge: dict, shards: dict[str, list[dict]],
                      indexes: dict[int, tuple[dict, Path]], index: dict, rewritten: dict[str, dict], input_records: list[dict],
                      quarantined: list[dict], n_inputs: int) -> dict:
    """The corpus's manifest with generation g added (contract: docs/data_prep.md, "Refresh")."""
    m = copy.deepcopy(corpus.manifest)
    gens = copy.deepcopy(corpus.generations)
    for e in gens:
        h = int(e["generation"])
        e["index"] = indexes[h][0]
        for split, r in merge["retired_from"].get(str(h), {}).items():
            e["live_documents"][split] -= r["documents"]
            e["live_tokens"][split] -= r["tokens"]
    new_splits = {}
    for split in SPLITS:
        entry = m["splits"].setdefault(split, {"tokens": 0, "documents": 0, "shards": []})
        for s in entry["shards"]:
            s.setdefault("generation", 1)
        start = len(entry["shards"])
        added = [dict(s, generation=g) for s in shards.get(split, [])]
        entry["shards"] += added
        entry["tokens"] = sum(int(s["tokens"]) for s in entry["shards"])
        entry["documents"] = sum(int(s["documents"]) for s in entry["shards"])
        new_splits[split] = {"tokens": sum(int(s["tokens"]) for s in added),
                             "documents": sum(int(s["documents"]) for s in added),
                             "shards": list(range(start, start + len(added)))}
    m["documents"] = ([dict(d, **rewritten[d["path"]]) if d["path"] in rewritten else d for d in m["documents"]]
                      + [dict(p, path=final_part(g, p["path"])) for p in merge["documents"]])
    bad: Counter = Counter()
    for r in input_records:
        bad.update(r.get("bad_records", {}))
    counts = dict(merge["counts"])
    counts.update(input_files=n_inputs, quarantined_files=len(quarantined),
                  parsed=sum(r["records"] for r in input_records), bad_records=sum(bad.values()),
                  train_tokens=new_splits["train"]["tokens"], val_tokens=new_splits["val"]["tokens"])
    gens.append({
        "generation": g, "source": hashed_config(cfg)["source"], "inputs": input_records,
        "counts": dict(sorted(counts.items())), "dropped": merge["dropped"], "duplicates": merge["duplicates"],
        "bad_records": dict(sorted(bad.items())), "decontaminated_by_eval_set": merge["decontaminated"],
        "decontamination": merge["decontam_summary"], "quarantined": quarantined, "splits": new_splits,
        "retired": merge["retired"], "index": index,
        "live_documents": {s: new_splits[s]["documents"] for s in SPLITS},
        "live_tokens": {s: new_splits[s]["tokens"] for s in SPLITS}})
    m["generations"] = gens
    m.update(totals(gens))
    return m


def write_commit(cfg: PrepConfig, corpus: Corpus, g: int, merge: dict, rewritten: dict[str, dict],
                 manifest: dict) -> dict:
    """work/gen-<g>/commit.json: every move that publishes generation g, in a safe order (retired
    lists and indexes first: nothing reads them before the manifest; then the rewritten parts, which
    only lose rows; then the new parts), and the manifest to write after them."""
    out = cfg.out_path
    work = gen_work_dir(out, g)
    w = work.relative_to(out).as_posix()
    moves = [[f"{w}/{r['file']}", r["file"]] for _, r in sorted(merge["retired"].items())]
    if not corpus.generations[0].get("index"):  # the first append: generation 1's index too
        moves.append([first_index_staged(corpus).relative_to(out).as_posix(), index_file(1)])
    moves.append([f"{w}/index.parquet", index_file(g)])
    moves += [[f"{w}/rewrite/{part}", part] for part in sorted(rewritten)]
    moves += [[p["path"], final_part(g, p["path"])] for p in merge["documents"]]
    plan = {"generation": g, "moves": moves, "manifest": manifest}
    path = work / "commit.json"
    atomic_write_json(path, plan)
    mark_done(path)
    pause_point("commit")  # the plan is written, nothing is moved
    return plan


def apply_commit(out: Path, plan: dict) -> None:
    """Do the plan's moves (those not done yet), then write its manifest. Idempotent."""
    for src, dst in plan["moves"]:
        s, d = out / src, out / dst
        if s.exists():
            d.parent.mkdir(parents=True, exist_ok=True)
            os.replace(s, d)
            pause_point("commit-move")  # some moves done, not all
        elif not d.exists():
            raise PrepError(f"{s}: missing, and {d} is not in place either: the interrupted append of generation "
                            f"{plan['generation']} cannot be finished; restore {s}, or rebuild the corpus")
    pause_point("manifest")
    write_manifest(out, plan["manifest"])


def finish_pending_commit(out: Path) -> int | None:
    """Finish a commit that a killed append left half-done; the generation it adds, or None."""
    manifest = read_json(out / "manifest.json")
    g = len(generations_of(manifest)) + 1
    path = gen_work_dir(out, g) / "commit.json"
    if not is_done(path):
        return None
    apply_commit(out, read_json(path))
    say(f"finished the interrupted append of generation {g} to {out}")
    return g


def appended_state(out: Path) -> str | None:
    """Why a plain run (append=false) must not rebuild generation 1 in `out`, or None."""
    path = Path(out) / "manifest.json"
    n = len(generations_of(read_json(path))) if path.is_file() else 1
    if n > 1:
        return f"it holds generations 1-{n} (appended with append=true)"
    pending = sorted(p.parent.name for p in (Path(out) / "work").glob("gen-*/commit.json.done"))
    return f"an append ({pending[0]}) was interrupted while committing" if pending else None


def drop_appended(out: Path) -> None:
    """Delete every appended generation and what they changed (generation 1's documents parts, so
    its merge is redone): what `overwrite=true` does before a plain run rebuilds generation 1."""
    out = Path(out)
    for pattern in ("work/gen-*", "shards/gen-*", "rejects/gen-*"):
        for p in out.glob(pattern):
            shutil.rmtree(p)
    for name in ("documents", "index", "retired"):
        if (out / name).exists():
            shutil.rmtree(out / name)
    marker_path(out / "work" / "merge.json").unlink(missing_ok=True)
    (out / "manifest.json").unlink(missing_ok=True)


# ---- the run -------------------------------------------------------------------------------------


def live_lengths(out: Path, manifest: dict) -> np.ndarray:
    """Tokens of every live document (for the length histogram), from the generations' indexes."""
    gone = {s: np.unique(np.concatenate([np.fromfile(out / g["retired"][s]["file"], dtype=IDX_DTYPE).astype(np.int64)
                                         for g in manifest["generations"] if s in (g.get("retired") or {})] or
                                        [np.zeros(0, dtype=np.int64)])) for s in SPLITS}
    parts = []
    for g in manifest["generations"]:
        t = pq.read_table(out / g["index"]["path"], columns=["split", "doc", "tokens"])
        docs, tokens = t.column("doc").to_numpy(), t.column("tokens").to_numpy()
        split = np.asarray(t.column("split").to_pylist(), dtype=object)
        for s in SPLITS:
            sel = split == s
            parts.append(tokens[sel][~np.isin(docs[sel], gone[s])])
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def run_append(cfg: PrepConfig, t0: float) -> dict | None:
    """`append=true`: add generation g to the finished corpus in out_dir; the manifest (unchanged
    when there is nothing new), or None for stage=fetch/map."""
    out = cfg.out_path
    if not (out / "manifest.json").is_file():
        raise no_corpus(out)
    alone = cfg.task.count == 1  # array map tasks run side by side: none may move another's files
    if alone:
        remove_stale_temps(out)
    finished = finish_pending_commit(out) if alone else None
    corpus = load_corpus(out)
    check_append_config(cfg, corpus.manifest, out)  # cfg comes from append_config (driver): a guard
    tok, tok_sha = corpus_tokenizer(corpus)
    inputs, src_quarantined = resolve_input_files(append_source(cfg, corpus))
    plan = plan_inputs(corpus, inputs)
    g = corpus.next_generation
    if not plan.new:
        if finished is not None:
            return corpus.manifest
        listed = (f"the {plan.known} listed input file(s) are in the corpus already" if plan.known
                  else "the source lists no input file")
        failed = f" ({len(src_quarantined)} could not be fetched: see above)" if src_quarantined else ""
        say(f"nothing new to append to {out}: {listed}{failed}; manifest.json is unchanged "
            f"(generations 1-{g - 1})")
        return corpus.manifest
    log.info("%s: appending generation %d from %d new input file(s) (%d listed are in the corpus already)",
             out, g, len(plan.new), plan.known)
    if cfg.stage == Stage.fetch:
        return None
    timings: dict[str, float] = {"inputs": round(time.time() - t0, 3)}

    def timed(name: str, fn, *args, **kw):
        t = time.time()
        result = fn(*args, **kw)
        timings[name] = round(time.time() - t, 3)
        return result

    if cfg.stage in (Stage.all, Stage.map):
        timed("map", run_map, cfg, plan.new, g)
    if cfg.stage == Stage.map:
        return None
    map_files, input_records, quarantined = map_outputs(cfg, plan.new, g)
    prune_map_outputs(cfg, plan.new, g)
    pause_point("reduce")
    indexes = timed("index", ensure_indexes, corpus, cfg.progress)
    merge = timed("merge", run_generation_merge, cfg, corpus, g, map_files,
                  input_entries(input_records, src_quarantined), indexes)
    shards = timed("shards", run_shards, cfg, merge, tok, tok_sha, generation=g)
    index = run_generation_index(cfg, corpus, g, merge, shards)
    rewritten = timed("rewrite", run_rewrite, cfg, corpus, g, merge)
    manifest = appended_manifest(cfg, corpus, g, merge, shards, indexes, index, rewritten, input_records,
                                 src_quarantined + quarantined, len(plan.new) + len(src_quarantined))
    apply_commit(out, write_commit(cfg, corpus, g, merge, rewritten, manifest))
    entry = manifest["generations"][-1]
    lengths = live_lengths(out, manifest)
    if cfg.summary.histogram:
        length_histogram(lengths, out / "doc_lengths.png")
    seconds = time.time() - t0
    atomic_write_json(out / "summary.json", {
        "seconds": round(seconds, 3), "stage_seconds": timings, "generation": g, "counts": entry["counts"],
        "dropped": entry["dropped"], "retired": entry["retired"], "live": manifest["live"],
        "median_doc_tokens": float(np.median(lengths)) if lengths.size else 0.0})
    if cfg.summary.print:
        print_generation_summary(manifest, g, seconds, out)
    return manifest
