"""kill -9 during `append=true`, at every stage of the append (the pause points of data_prep.pipeline),
then a plain rerun of the same command: generation 1 stays intact at every kill (its manifest and shards,
and before the commit every file it lists), and the finished append is byte-identical to an
uninterrupted one, with no temp file left behind."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from common.atomic import is_temp
from data_prep.pipeline.markers import sha256_file
from tests.chaos.conftest import FAST
from tests.data_prep.conftest import (
    BASE_PMIDS,
    abstract_text,
    citation,
    kill_at,
    prep_cli,
    pubmed_file,
    run_prep,
    write_generated_pubmed,
)

pytestmark = pytest.mark.chaos

# Small shards and document parts, two workers: every stage has several units of work to die in.
ARGS = [*FAST, "shards.max_tokens=3000", "documents.rows_per_file=20", "workers=2"]
NEW_PMIDS = tuple(range(9_800_001, 9_800_041))
# The append's pause points in pipeline order ("index" twice: generation 1's index, then the new one).
APPEND_POINTS = ["map-file", "reduce", "index", "documents", "merge", "shard", "index", "rewrite", "commit"]
COMMIT_POINTS = ["commit-move", "manifest"]  # inside the commit: the previous manifest and shards still stand


def write_update(folder: Path) -> None:
    """Two update files: 40 new citations, a revision, a re-issue, two deletions (one of a revised id)."""
    folder.mkdir(parents=True)
    new = [citation(p, f"Appended study {p} of metformin", abstract_text(p, 80)) for p in NEW_PMIDS]
    pubmed_file(folder / "pubmed26n0003.xml",
                [*new[:20], citation(BASE_PMIDS[10], "Revised generated citation", abstract_text(1), version=2)],
                deletions=(BASE_PMIDS[20],))
    pubmed_file(folder / "pubmed26n0004.xml",
                [*new[20:], citation(BASE_PMIDS[11], "Re-issued generated citation", abstract_text(2))],
                deletions=(BASE_PMIDS[10],))


def outputs(out: Path) -> dict[str, str]:
    """sha256 of every output an append writes or must leave alone."""
    files = [p for d in ("documents", "shards", "retired", "index", "tokenizer") for p in sorted((out / d).rglob("*"))
             if p.is_file()]
    files += [out / "manifest.json"]
    return {str(p.relative_to(out)): sha256_file(p) for p in files}


def listed(out: Path, manifest_bytes: dict[str, str]) -> dict[str, str]:
    return {p: sha256_file(out / p) for p in manifest_bytes if (out / p).exists()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("append_kill")
    write_generated_pubmed(root / "gen1")
    write_update(root / "gen2")
    gen1 = root / "gen1_out"
    run_prep([f"source.path={root / 'gen1'}", f"out_dir={gen1}", *ARGS])
    reference = root / "reference"
    shutil.copytree(gen1, reference)
    manifest = run_prep([f"source.path={root / 'gen2'}", f"out_dir={reference}", "append=true", *ARGS])
    assert manifest["generations"][1]["counts"]["retired"] == 3  # revised, re-issued, deleted
    return {"root": root, "gen1": gen1, "reference": reference}


@pytest.mark.slow
def test_kill_at_every_append_stage_keeps_generation_1_and_resumes_to_the_same_bytes(corpus, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(corpus["gen1"], out)
    gen1 = outputs(out)
    gen1_shards = {p: s for p, s in gen1.items() if p.startswith("shards/")}
    args = [f"source.path={corpus['root'] / 'gen2'}", f"out_dir={out}", "append=true", *ARGS]
    for point in APPEND_POINTS:  # each run resumes the last one's work and dies one stage further
        kill_at(args, point)
        assert listed(out, gen1) == gen1, point  # before the commit: generation 1 exactly as it was
        assert not (out / "shards" / "gen-00002").exists() or point in ("shard", "index", "rewrite", "commit"), point
    for point in COMMIT_POINTS:  # the next run finishes the commit first, and dies inside it
        kill_at(args, point)
        assert sha256_file(out / "manifest.json") == gen1["manifest.json"], point
        assert listed(out, gen1_shards) == gen1_shards, point
    r = prep_cli(args)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "finished the interrupted append of generation 2" in r.stdout
    assert outputs(out) == outputs(corpus["reference"])
    assert {p: s for p, s in outputs(out).items() if p in gen1_shards} == gen1_shards
    assert not [p for p in out.rglob("*") if is_temp(p)]
    again = prep_cli(args)  # and the same command once more: nothing new
    assert again.returncode == 0 and "nothing new to append" in again.stdout
    assert outputs(out) == outputs(corpus["reference"])
