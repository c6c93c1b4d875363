"""Without a cluster the Slurm tests skip with the reason; under CI=true that skip is a failure.

Runs one Slurm test in a child pytest whose PATH has no Slurm tools (no cluster needed)."""

from __future__ import annotations

import os
import subprocess

from .slurm_helpers import PYTHON, ROOT

TARGET = "tests/slurm/test_srun_two_tasks.py"


def child_pytest(ci: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PATH"] = str(ROOT / ".venv" / "bin")  # python, but no sinfo/sbatch
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([PYTHON, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", TARGET],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)


def test_no_cluster_skips_with_reason():
    r = child_pytest(None)
    assert r.returncode == 0, r.stdout[-2000:]
    assert "1 skipped" in r.stdout and "sinfo" in r.stdout and "slurm/local-cluster.sh up" in r.stdout


def test_no_cluster_under_ci_fails():
    r = child_pytest("true")
    assert r.returncode != 0, r.stdout[-2000:]
    assert "CI=true but no Slurm cluster" in r.stdout and "skipped" not in r.stdout.splitlines()[-1]
