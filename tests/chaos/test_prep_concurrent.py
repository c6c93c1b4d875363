"""Runs that overlap in one out_dir: one of a pair runs, the other fails at once with one line naming
it (never a traceback, never a damaged out_dir); the map tasks of a Slurm array share out_dir with
each other and with nothing else."""

from __future__ import annotations

import os
import random
import signal
import socket
import time
from pathlib import Path

import pytest

from common.lock import LockedError
from tests.chaos.conftest import FAST, check_same_as_reference, write_good_corpus
from tests.data_prep.conftest import output_bytes, prep_cli, prep_popen, run_prep, wait_for_line

pytestmark = pytest.mark.chaos


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("concurrent")
    write_good_corpus(root / "in")
    run_prep([f"source.path={root / 'in'}", f"out_dir={root / 'reference'}", *FAST])
    return root / "in", root / "reference"


@pytest.mark.slow
def test_overlapping_pairs_one_runs_the_other_is_refused(corpus, tmp_path):
    src, reference = corpus
    seed = int(os.environ.get("CHAOS_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    for pair in range(3):
        out = tmp_path / f"out{pair}"
        args = [f"source.path={src}", f"out_dir={out}", *FAST]
        a = prep_popen(args)
        time.sleep(rng.uniform(0.0, 1.2))
        b = prep_popen([*args, "workers=2"])
        results = []
        for p in (a, b):
            text = p.communicate(timeout=300)[0]
            results.append((p.returncode, text))
        context = f"CHAOS_SEED={seed} pair {pair}: {[(rc, t[-600:]) for rc, t in results]}"
        assert all(rc in (0, 2) for rc, _ in results) and any(rc == 0 for rc, _ in results), context
        for rc, text in results:
            assert "Traceback" not in text, context
            if rc == 2:
                last = text.strip().splitlines()[-1]
                assert "is in use by data_prep (pid" in last and f"on host {socket.gethostname()}" in last, context
        check_same_as_reference(out, reference, context)


@pytest.mark.slow
def test_array_map_tasks_share_out_dir_and_exclude_other_runs(corpus, tmp_path):
    src, reference = corpus
    out = tmp_path / "out"
    base = [f"source.path={src}", f"out_dir={out}", *FAST]
    task0 = prep_popen([*base, "stage=map", "task.count=2", "task.index=0"], env={"DATA_PREP_PAUSE_AT": "map:1"})
    try:
        wait_for_line(task0, "paused at map:1")
        assert run_prep([*base, "stage=map", "task.count=2", "task.index=1"]) is None  # side by side: fine
        for stage in ("reduce", "all"):
            with pytest.raises(LockedError, match=f"pid {task0.pid}"):
                run_prep([*base, f"stage={stage}"])
        r = prep_cli([*base, "stage=reduce"])
        assert r.returncode == 2 and f"pid {task0.pid}" in r.stderr and "Traceback" not in r.stderr
    finally:
        os.killpg(task0.pid, signal.SIGKILL)
        task0.wait()
    assert run_prep([*base, "stage=map", "task.count=2", "task.index=0"]) is None  # the killed task, requeued
    run_prep([*base, "stage=reduce"])
    assert output_bytes(out) == output_bytes(reference)
