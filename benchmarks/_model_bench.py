"""Helpers shared by the model benchmarks: run a case in a fresh process and read its peak memory.

Each case runs in its own interpreter so peak RSS (CPU) belongs to that case alone; the child
prints one JSON line that the parent collects. Timing and statistics live in _stats.py.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run_child(script: str, args: list[str], timeout: int = 1800) -> dict:
    """Run `python script --child args...` and return the JSON dict it prints last."""
    out = subprocess.run([sys.executable, script, "--child", *args], capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"benchmark case {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def emit(result: dict) -> None:
    print(json.dumps(result), flush=True)
