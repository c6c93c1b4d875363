"""Completion markers: how a stage says a unit of work is finished, and the checks around them.

A stage writes each output atomically (`common.atomic`), then its completion marker
`<output>.done` last (a small JSON record). A rerun skips a unit of work only when its marker
exists (and, where it records them, for the same upstream outputs: `records_sha256`); anything
else (a temp file, an output without a marker) is leftover from a killed run and is redone from
scratch. `pause_point` is the seam the kill-and-resume tests stop a run at.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from common.atomic import atomic_write_json


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def marker_path(path: Path) -> Path:
    return Path(path).with_name(Path(path).name + ".done")


def is_done(path: Path) -> bool:
    return marker_path(path).exists()


def mark_done(path: Path, info: dict | None = None) -> None:
    atomic_write_json(marker_path(path), info or {})


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    """Checksum recorded in markers and the manifest (inputs, documents, shards)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


def records_sha256(records: list[dict]) -> str:
    """One digest of output records (e.g. merge's documents list: path, rows, sha256 of each part),
    recorded in the next stage's marker: that stage is reused only for the same upstream outputs."""
    return hashlib.sha256(json.dumps(records, sort_keys=True).encode("utf-8")).hexdigest()


def pause_point(name: str) -> None:
    """Test seam for kill-and-resume tests: with DATA_PREP_PAUSE_AT=<name>, stop here and wait.

    The test then SIGKILLs the process group, which is the only reliable way to interrupt a run at
    a known point. Unset (always, outside tests), this costs one dict lookup.
    """
    if os.environ.get("DATA_PREP_PAUSE_AT") == name:
        print(f"[data_prep] paused at {name}", flush=True)
        while True:  # wait for the SIGKILL
            time.sleep(0.2)
