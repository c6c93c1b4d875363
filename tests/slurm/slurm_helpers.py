"""Submitting, watching and inspecting Slurm jobs from the tests (plain subprocess calls)."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PYTHON = str(VENV_PYTHON if VENV_PYTHON.is_file() else Path(sys.executable))
SUBMIT = ROOT / "slurm" / "submit.py"
TERMINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
            "BOOT_FAIL", "DEADLINE")
# A tiny pretraining: seconds per step on a loaded 2-core machine, checkpoints every 6 steps.
TINY_TRAIN = ["experiment=demo", "trainer.max_steps=12", "data.batch_size=2", "task.seq_len=32",
              "trainer.val_check_interval=6", "trainer.checkpoint_every_n_steps=6", "trainer.save_top_k=0",
              "trainer.progress_bar=false", "data.val_batches=1",
              # a tiny step takes milliseconds: without a pause the job can end before a test's signal
              "debug.step_delay_s=0.5"]
DDP_TRAIN = ["trainer.max_steps=4", "trainer.devices=2", "strategy=ddp"]  # 2 tasks, gloo on CPU
# Small demo corpus: fast, and still dozens of input files for the map array to split.
PREP_OVERRIDES = ["source=demo", "source.n_abstracts=300", "++decontam.enabled=false", "split.val_fraction=0.05",
                  "summary.print=false", "summary.histogram=false"]
PREP_TASKS = 3
JOB_TIME = "--time=10"  # minutes: a hung job cannot hold the test cluster for long


def tail(path: Path, n: int = 60) -> str:
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError as e:
        return f"(no log at {path}: {e.strerror})"
    return "\n".join(lines[-n:])


def run_checked(argv: Sequence[str], timeout: float = 120, cwd: Path = ROOT) -> str:
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, cwd=cwd)
    assert r.returncode == 0, (f"{' '.join(map(str, argv))} exited {r.returncode}\n--- stdout\n{r.stdout[-4000:]}"
                               f"\n--- stderr\n{r.stderr[-4000:]}")
    return r.stdout


def submit_with(argv: Sequence[str]) -> dict[str, str]:
    """Run slurm/submit.py; return {name: job id} from its "submitted <name>: job <id>" lines."""
    out = run_checked([PYTHON, str(SUBMIT), f"--sbatch={JOB_TIME}", *argv])
    ids = dict(re.findall(r"^submitted (\w+): job (\d+)", out, flags=re.M))
    assert ids, f"submit.py printed no job id:\n{out}"
    return ids


def submit_pretrain(overrides: Sequence[str], template: str | None = None) -> str:
    extra = [f"--template={template}"] if template else []
    return submit_with([*extra, "pretrain", *overrides])["pretrain"]


_FIELD = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z/:_]*)=")


def job_records(job: str) -> list[dict[str, str]]:
    """`scontrol show job -o` as one dict per job (or per array task); [] once Slurm forgot it."""
    r = subprocess.run(["scontrol", "show", "job", "-o", str(job)], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        return []
    records = []
    for line in r.stdout.splitlines():
        marks = list(_FIELD.finditer(line))
        rec = {m.group(1): line[m.end(): marks[i + 1].start() if i + 1 < len(marks) else len(line)].strip()
               for i, m in enumerate(marks)}
        if rec:
            records.append(rec)
    return records


def state_of(rec: dict[str, str]) -> str:
    return rec.get("JobState", "UNKNOWN").split()[0]


def wait_job(job: str, timeout: float, log: Path | None = None, until: Callable[[], bool] | None = None,
             poll: float = 0.5) -> list[dict[str, str]]:
    """Wait until every record of `job` is in a terminal state (or `until()` is true); return them.

    Fails with the job's records and the tail of its log when it times out."""
    deadline = time.monotonic() + timeout
    recs: list[dict[str, str]] = []
    while time.monotonic() < deadline:
        recs = job_records(job)
        if until is not None and until():
            return recs
        if recs and all(state_of(r) in TERMINAL for r in recs):
            return recs
        time.sleep(poll)
    states = ", ".join(f"{r.get('JobId')}={state_of(r)} ({r.get('Reason')})" for r in recs)
    raise AssertionError(f"job {job} not finished after {timeout:.0f} s: {states}\n"
                         + (f"--- {log}\n{tail(log)}" if log else ""))


def assert_completed(recs: list[dict[str, str]], log: Path | None = None) -> None:
    bad = [r for r in recs if state_of(r) != "COMPLETED" or r.get("ExitCode") != "0:0"]
    assert recs and not bad, (
        "job did not complete: " + ", ".join(f"{r.get('JobId')}={state_of(r)} exit {r.get('ExitCode')}" for r in bad)
        + (f"\n--- {log}\n{tail(log)}" if log else ""))


def cancel_jobs(ids: Sequence[str]) -> None:
    live = [j for j in ids if any(state_of(r) not in TERMINAL for r in job_records(j))]
    if live:
        subprocess.run(["scancel", *live], capture_output=True, timeout=30)


def losses(run_dir: Path) -> list[tuple[int, float]]:
    """(step, loss) rows of <run_dir>/metrics.csv (written by train/callbacks.py)."""
    with open(Path(run_dir) / "metrics.csv", newline="") as f:
        return [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(f)]


def last_step(run_dir: Path) -> int:
    try:
        rows = losses(run_dir)
    except (OSError, ValueError, KeyError):
        return 0
    return rows[-1][0] if rows else 0
