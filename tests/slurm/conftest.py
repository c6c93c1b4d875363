"""Fixtures for the tests that run real jobs on a Slurm cluster (`slurm/local-cluster.sh up`).

Without a reachable cluster (`sinfo` missing or failing, or no node up) every test here is
skipped with the reason. Under CI=true a skipped Slurm test is a failure instead: CI starts the
cluster (.ci/run), so a skip there means the cluster or the test setup broke.

Jobs use the project's .venv Python (slurm/submit.py exports it) and write into pytest's tmp
directories (one machine, so the filesystem is shared with the "compute node").
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from .slurm_helpers import (
    DDP_TRAIN,
    PREP_OVERRIDES,
    PREP_TASKS,
    PYTHON,
    ROOT,
    TINY_TRAIN,
    cancel_jobs,
    run_checked,
    submit_pretrain,
    submit_with,
    wait_job,
)

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def cluster_unavailable() -> str | None:
    """Why no Slurm cluster can take jobs, or None when one can."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "Slurm client tools (sinfo, sbatch) not found; start a local cluster: sudo slurm/local-cluster.sh up"
    try:
        r = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "sinfo timed out: slurmctld is not answering (sudo slurm/local-cluster.sh up)"
    if r.returncode != 0:
        return f"sinfo failed ({(r.stderr or r.stdout).strip()[:200]}); start it: sudo slurm/local-cluster.sh up"
    states = [s.strip().rstrip("*~#") for s in r.stdout.split()]
    if not any(s.startswith(("idle", "mix", "alloc", "comp")) for s in states):
        return f"no Slurm node is up (states: {', '.join(states) or 'none'}); run sudo slurm/local-cluster.sh up"
    return None


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    reason = cluster_unavailable()
    if reason is not None:
        if CI:
            pytest.fail(f"CI=true but no Slurm cluster: {reason}")
        pytest.skip(reason)


@pytest.fixture(autouse=True)
def _needs_cluster(request) -> None:
    """Tests marked `slurm` need the cluster; the others here (config rendering) do not."""
    if request.node.get_closest_marker("slurm") is not None:
        request.getfixturevalue("slurm_cluster")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Scoped to items under tests/slurm (per-directory conftest hook): under CI a skip is a failure.
    outcome = yield
    rep = outcome.get_result()
    if CI and rep.skipped and item.get_closest_marker("slurm") is not None:
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        rep.outcome = "failed"
        rep.longrepr = f"CI=true: Slurm tests must run, but {item.nodeid} was skipped: {reason}"


@pytest.fixture
def jobs():
    """Job ids a test submits; any still queued or running at the end are cancelled."""
    ids: list[str] = []
    yield ids
    cancel_jobs(ids)


# ---- shared inputs (built once per session) ---------------------------------------------------

@pytest.fixture(scope="session")
def demo_data(tmp_path_factory, slurm_cluster) -> Path:
    """The demo corpus prepared by one local process: the reference for the array job and the
    training data for every training job."""
    out = tmp_path_factory.mktemp("prep") / "single"
    run_checked([PYTHON, "-m", "data_prep", *PREP_OVERRIDES, f"out_dir={out}", "progress=false"], timeout=300)
    assert (out / "manifest.json").is_file()
    return out


@dataclass
class Background:
    """Jobs started once per session and left running while the tests that need them come up:
    most of a Slurm test is waiting (start-up, requeue delays), so they overlap."""

    demo_data: Path
    reference: tuple[str, Path]  # sbatch template: (job id, run_dir)
    ddp: tuple[str, Path]  # 2-task job through the multi-node template
    prep: tuple[dict[str, str], Path]  # fetch -> map array -> merge: ({name: job id}, out_dir)
    launcher: tuple[subprocess.Popen, Path, Path]  # `python -m train -m hydra/launcher=slurm_local`: (process, run_dir, cwd)


@pytest.fixture(scope="session")
def background(tmp_path_factory, demo_data):
    base = tmp_path_factory.mktemp("jobs")
    ids: list[str] = []
    ref_dir = base / "reference"
    ref = submit_pretrain([*TINY_TRAIN, f"task.data_dir={demo_data}", f"run_dir={ref_dir}"])
    ids.append(ref)
    ddp_dir = base / "ddp"
    ddp = submit_pretrain([*TINY_TRAIN, *DDP_TRAIN, f"task.data_dir={demo_data}", f"run_dir={ddp_dir}"],
                          template="pretrain_multinode.sbatch")
    ids.append(ddp)
    prep_dir = base / "prep_array"
    prep = submit_with(["prep", *PREP_OVERRIDES, f"out_dir={prep_dir}", f"task.count={PREP_TASKS}", "workers=1"])
    ids.extend(prep.values())
    launcher_dir, launcher_cwd = base / "submitit", base / "submitit_cwd"
    launcher_cwd.mkdir()
    proc = subprocess.Popen(
        [PYTHON, "-m", "train", "-m", "hydra/launcher=slurm_local", "hydra.launcher.timeout_min=10", *TINY_TRAIN,
         f"task.data_dir={demo_data}", f"run_dir={launcher_dir}", "trainer.requeue_on_signal=true"],
        cwd=launcher_cwd, stdout=open(base / "launcher.log", "w"), stderr=subprocess.STDOUT,
        # As with `pip install -e .`: the submitter and the job (sbatch exports the environment)
        # import the project from any working directory.
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))})
    yield Background(demo_data, (ref, ref_dir), (ddp, ddp_dir), (prep, prep_dir), (proc, launcher_dir, launcher_cwd))
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=30)
    cancel_jobs(ids)


@pytest.fixture(scope="session")
def reference_run(background):
    """The uninterrupted tiny pretraining through slurm/pretrain.sbatch, finished."""
    job, run_dir = background.reference
    recs = wait_job(job, timeout=300, log=run_dir / f"slurm-{job}.out")
    return job, run_dir, recs
