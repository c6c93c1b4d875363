"""kill -9 at every stage (at the pause points the stages expose, and at random moments), then a plain
rerun: the outputs are byte-identical to an uninterrupted run's, with nothing lost or duplicated and
no temp file left behind."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

from tests.chaos.conftest import FAST, check_same_as_reference, write_good_corpus
from tests.data_prep.conftest import kill_at, prep_cli, prep_popen, run_prep

pytestmark = pytest.mark.chaos

# Small shards and document parts, two workers: every stage has several units of work to die in.
ARGS = [*FAST, "shards.max_tokens=3000", "documents.rows_per_file=20", "workers=2"]
# One pause point per stage, in pipeline order (data_prep.pipeline: DATA_PREP_PAUSE_AT).
STAGE_POINTS = ["map-file",  # a map output written, its marker not
                "map:2",  # two files done, the others not
                "reduce",  # every map output done, the merge not started
                "documents",  # the first documents part written, the merge not finished
                "merge",  # the merge marker written
                "tokenizer",  # tokenizer.json written, its marker not
                "shard",  # the first shard closed, the others not
                "manifest"]  # everything but manifest.json


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Path]:
    """(input folder, out_dir of an uninterrupted run)."""
    root = tmp_path_factory.mktemp("kill")
    write_good_corpus(root / "in")
    run_prep([f"source.path={root / 'in'}", f"out_dir={root / 'reference'}", *ARGS])
    return root / "in", root / "reference"


@pytest.mark.slow
def test_kill_at_every_stage_then_rerun_is_byte_identical(corpus, tmp_path):
    src, reference = corpus
    out = tmp_path / "out"
    args = [f"source.path={src}", f"out_dir={out}", *ARGS]
    for point in STAGE_POINTS:  # each run resumes the last one's work and dies one stage further
        kill_at(args, point)
        assert not (out / "manifest.json").exists(), point  # no manifest before the outputs are complete
    r = prep_cli(args)
    assert r.returncode == 0, r.stderr[-2000:]
    check_same_as_reference(out, reference, "after kills at " + ", ".join(STAGE_POINTS))


@pytest.mark.slow
def test_kill_at_random_moments_then_rerun_is_byte_identical(corpus, tmp_path):
    src, reference = corpus
    seed = int(os.environ.get("CHAOS_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    out = tmp_path / "out"
    args = [f"source.path={src}", f"out_dir={out}", *ARGS]
    delays = []
    for _ in range(3):
        delays.append(round(rng.uniform(0.9, 2.6), 2))  # imports take ~1 s; a run ~2-3 s on 2 cores
        p = prep_popen(args)
        time.sleep(delays[-1])
        os.killpg(p.pid, signal.SIGKILL)  # if it already finished, the rerun below simply resumes
        p.wait()
    check = run_prep(args)
    assert check is not None
    check_same_as_reference(out, reference, f"CHAOS_SEED={seed} (kills after {delays} s)")
