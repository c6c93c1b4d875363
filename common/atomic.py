"""The project's one way to write a file so that a reader never sees half of it.

Bytes go to a temp file in the destination's own directory (so the rename never crosses a file
system), are fsynced, get the mode a plain `open()` would give (mkstemp's 0600 would hide outputs
from a group), and then `os.replace` the destination. On any error, a SIGKILL aside, the temp file
is removed and the previous file is left as it was. Temp names end in `TEMP_SUFFIX`, so a cleanup
removes only what this project wrote (`remove_stale_temps`), never a user's own `*.tmp`.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

TEMP_SUFFIX = ".biogpt-tmp"


def _file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some file systems do not open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def disk_full_message(path: Path, err: OSError) -> str:
    """One line for ENOSPC/EDQUOT naming the file and the space left, or '' for other errors."""
    if err.errno not in (errno.ENOSPC, errno.EDQUOT):
        return ""
    try:
        st = os.statvfs(path.parent)
        free = f"{st.f_bavail * st.f_frsize / 2**20:.1f} MiB free"
    except OSError:
        free = "free space unknown"
    return f"{path}: no space left on the device ({free}); free some space and rerun (partial files were removed)"


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temp path beside `path` for a writer that wants a file name (pyarrow, torch,
    tokenizers); when the block ends without error the temp file is fsynced and replaces `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        msg = disk_full_message(path, e)
        if msg:
            raise OSError(e.errno, msg) from e
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """`with atomic_open(p, "wb") as f: ...` writes `p` as a whole or not at all."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb', got {mode!r}")
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=None if "b" in mode else encoding) as f:
            yield f
            f.flush()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def dump_json(obj: Any) -> str:
    """The project's JSON file format: indented, sorted keys, UTF-8 as is, newline at the end."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, dump_json(obj))


def is_temp(path: str | os.PathLike) -> bool:
    """Whether `path` is a temp file that `atomic_path` made (and a killed run may have left)."""
    name = Path(path).name
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def remove_stale_temps(folder: str | os.PathLike) -> int:
    """Delete this project's temp files under `folder` (leftovers of a killed run; never read).
    Files of any other name are left alone. Returns how many were removed."""
    folder = Path(folder)
    n = 0
    if folder.is_dir():
        for p in folder.rglob(f"*{TEMP_SUFFIX}"):
            if p.is_file() and not p.is_symlink() and is_temp(p):
                p.unlink(missing_ok=True)
                n += 1
    return n
