"""Data prep as fetch -> map job array -> dependent merge, byte-identical to one local process."""

from __future__ import annotations

import hashlib
import json

import pytest

from .slurm_helpers import PREP_TASKS, assert_completed, job_records, wait_job

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_array_and_merge_match_single_process(background):
    ids, out = background.prep
    demo_data = background.demo_data
    recs = wait_job(ids["merge"], timeout=300)
    logs = "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted((out / "slurm").glob("*.out")))
    assert all(r.get("JobState", "").startswith("COMPLETED") for r in recs), logs
    assert_completed(job_records(ids["fetch"]))

    tasks = job_records(ids["map"])
    assert len(tasks) == PREP_TASKS, logs
    assert_completed(tasks)
    assert sorted(r["ArrayTaskId"] for r in tasks) == [str(i) for i in range(PREP_TASKS)]
    for i in range(PREP_TASKS):  # each task mapped its own share of the files
        assert f"stage=map task {i}/{PREP_TASKS}" in logs

    ref = json.loads((demo_data / "manifest.json").read_text())
    got = json.loads((out / "manifest.json").read_text())
    assert got["config_hash"] == ref["config_hash"]
    assert got["counts"] == ref["counts"]
    assert sha(out / "tokenizer" / "tokenizer.json") == sha(demo_data / "tokenizer" / "tokenizer.json")
    for split in ("train", "val"):
        ref_shards, got_shards = ref["splits"][split]["shards"], got["splits"][split]["shards"]
        assert len(got_shards) == len(ref_shards) >= 1
        for a, b in zip(ref_shards, got_shards, strict=True):
            for key in ("bin", "idx"):
                assert (out / b[key]).read_bytes() == (demo_data / a[key]).read_bytes(), f"{split} {b[key]} differs"
