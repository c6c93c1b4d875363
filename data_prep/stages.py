"""What every pipeline stage shares: atomic outputs and completion markers.

A stage writes each output to `*.tmp` and `os.replace`s it into place, then writes its completion
marker last. A rerun skips a unit of work only when its marker exists; anything else (a temp file,
an output without a marker) is leftover from a killed run and is redone from scratch.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # what open() would give; mkstemp's 0600 would hide outputs from others


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def dump_json(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(Path(path), dump_json(obj))


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def marker_path(path: Path) -> Path:
    return Path(path).with_name(Path(path).name + ".done")


def is_done(path: Path) -> bool:
    return marker_path(path).exists()


def mark_done(path: Path, info: dict | None = None) -> None:
    atomic_write_json(marker_path(path), info or {})


def clear_marker(path: Path) -> None:
    m = marker_path(path)
    if m.exists():
        m.unlink()


def remove_temp_files(folder: Path) -> None:
    """Delete `*.tmp` leftovers of a killed run (they are never read)."""
    if Path(folder).is_dir():
        for p in Path(folder).rglob("*.tmp"):
            p.unlink(missing_ok=True)


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


def pause_point(name: str) -> None:
    """Test seam for kill-and-resume tests: with DATA_PREP_PAUSE_AT=<name>, stop here and wait.

    The test then SIGKILLs the process group, which is the only reliable way to interrupt a run at
    a known point. Unset (always, outside tests), this costs one dict lookup.
    """
    if os.environ.get("DATA_PREP_PAUSE_AT") == name:
        print(f"[data_prep] paused at {name}", flush=True)
        while True:  # wait for the SIGKILL
            time.sleep(0.2)
