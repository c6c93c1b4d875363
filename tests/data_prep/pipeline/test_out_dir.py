"""What a rerun may do to an out_dir: never keep a corpus that disagrees with the inputs, never touch
a file that is not the pipeline's, and never run twice at once in one out_dir."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from common.atomic import TEMP_SUFFIX, is_temp
from data_prep.pipeline.inputs import InputsChanged
from tests.data_prep.conftest import (
    BASE_PMIDS,
    FAST_PREP,
    abstract_text,
    citation,
    output_bytes,
    prep_cli,
    prep_popen,
    pubmed_file,
    run_prep,
    wait_for_line,
    write_generated_pubmed,
)

FAST = FAST_PREP
ADDED = tuple(range(9_400_001, 9_400_011))


def ids(out: Path) -> set[str]:
    return set(pq.read_table(out / "documents", columns=["id"]).column("id").to_pylist())


def add_two_files(folder: Path) -> None:
    half = len(ADDED) // 2
    for name, pmids in (("added_a.xml", ADDED[:half]), ("added_b.xml", ADDED[half:])):
        pubmed_file(folder / name, [citation(p, f"Added study {p} on aspirin", abstract_text(p)) for p in pmids])


@pytest.fixture
def finished(tmp_path) -> tuple[Path, Path, list[str], dict]:
    """(input folder, out_dir, overrides, manifest) of a finished run."""
    d = tmp_path / "in"
    write_generated_pubmed(d)
    out = tmp_path / "out"
    args = [f"source.path={d}", f"out_dir={out}", *FAST]
    return d, out, args, run_prep(args)


def test_rerun_with_added_files_is_refused_then_rebuilt_with_overwrite(finished, tmp_path):
    d, out, args, first = finished
    before = output_bytes(out)
    add_two_files(d)
    r = prep_cli(args)  # the command a user reruns
    assert r.returncode == 2, r.stderr[-2000:]
    line = r.stderr.strip().splitlines()[-1]
    assert "2 added" in line and "overwrite=true" in line and "new out_dir" in line and "Traceback" not in r.stderr
    assert output_bytes(out) == before  # the finished corpus is left as it was, and still agrees with itself
    with pytest.raises(InputsChanged):
        run_prep(args)

    rebuild = prep_popen([*args, "overwrite=true"], env={"DATA_PREP_PAUSE_AT": "documents"})
    try:
        wait_for_line(rebuild, "paused at documents")  # killed mid-rebuild: the old manifest must be gone
    finally:
        os.killpg(rebuild.pid, signal.SIGKILL)
        rebuild.wait()
    assert not (out / "manifest.json").exists()
    rebuilt = run_prep([*args, "overwrite=true"])
    assert rebuilt["counts"]["kept"] == first["counts"]["kept"] + len(ADDED)
    assert {f"pmid:{p}" for p in ADDED} <= ids(out) and len(ids(out)) == rebuilt["counts"]["kept"]
    assert len(rebuilt["inputs"]) == len(first["inputs"]) + 2
    fresh = tmp_path / "fresh"
    run_prep([f"source.path={d}", f"out_dir={fresh}", *FAST])
    assert output_bytes(out) == output_bytes(fresh)  # the same bytes as a new out_dir
    assert run_prep(args)["config_hash"] == first["config_hash"]  # and now a plain rerun resumes


def test_removed_or_edited_inputs_are_refused_and_a_touch_is_not(finished):
    d, out, args, first = finished
    update = d / "pubmed26n0002.xml"
    data = update.read_bytes()
    os.utime(update, ns=(time.time_ns(), time.time_ns() + 10**9))  # touched, same bytes: the same inputs
    assert run_prep(args)["inputs"] == first["inputs"]

    update.write_bytes(data.replace(b"metformin", b"metforman"))  # same size, other bytes
    with pytest.raises(InputsChanged, match="1 changed"):
        run_prep(args)
    update.write_bytes(data)

    update.unlink()
    with pytest.raises(InputsChanged, match="1 removed"):
        run_prep(args)
    assert ids(out) == {f"pmid:{p}" for p in BASE_PMIDS if p != BASE_PMIDS[3]} | {"pmid:9000100"}


def test_a_moved_input_folder_is_the_same_inputs(finished, tmp_path):
    d, out, args, first = finished
    moved = tmp_path / "moved"
    d.rename(moved)
    again = run_prep([f"source.path={moved}", f"out_dir={out}", *FAST])
    assert again["counts"] == first["counts"]
    assert {Path(i["path"]).parent for i in again["inputs"]} == {moved}  # the manifest names where they are now


def test_startup_deletes_only_the_pipelines_own_temp_files(finished):
    d, out, args, first = finished
    theirs = {out / "user_notes.tmp": "my notes", out / "work" / "notes.tmp": "more",
              out / "shards" / "draft.tmp": "x", out / ".hidden.tmp": "y"}
    for p, text in theirs.items():
        p.write_text(text)
    ours = [out / "work" / f".merge.json.k3j2{TEMP_SUFFIX}", out / "shards" / f".train-00000.bin.x9{TEMP_SUFFIX}"]
    for p in ours:
        p.write_bytes(b"partial")
    run_prep(args)
    assert {p: p.read_text() for p in theirs} == theirs
    assert not any(p.exists() for p in ours) and not [p for p in out.rglob("*") if is_temp(p)]
    run_prep([*args, "split.val_fraction=0.2", "overwrite=true"])  # deletes the outputs of the other config...
    assert {p: p.read_text() for p in theirs if p.exists()} == {out / "user_notes.tmp": "my notes",
                                                                 out / ".hidden.tmp": "y"}  # ...not a user's file


def test_a_second_run_into_the_same_out_dir_fails_at_once_naming_the_first(tmp_path):
    d = tmp_path / "in"
    write_generated_pubmed(d)
    out = tmp_path / "out"
    args = [f"source.path={d}", f"out_dir={out}", *FAST]
    first = prep_popen(args, env={"DATA_PREP_PAUSE_AT": "map:1"})
    try:
        wait_for_line(first, "paused at map:1")
        hydra_record = (out / ".hydra" / "overrides.yaml").read_text()
        t = time.monotonic()
        second = prep_cli([*args, "workers=2"])
        assert second.returncode == 2 and time.monotonic() - t < 60
        line = second.stderr.strip()
        assert "\n" not in line and "Traceback" not in line
        assert f"pid {first.pid}" in line and f"host {socket.gethostname()}" in line and str(out) in line
        assert (out / ".hydra" / "overrides.yaml").read_text() == hydra_record  # not even Hydra's record written
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert json.loads((out / ".lock").read_text())["pid"] == first.pid  # what the killed run left...
    manifest = run_prep(args)  # ...does not block: the kernel released the lock
    assert manifest["counts"]["kept"] == len(BASE_PMIDS)
