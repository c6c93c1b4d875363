"""One run per folder: a lock on `<folder>/.lock` (data_prep's out_dir, train's run_dir).

    with run_lock(out_dir, "data_prep"):
        ...   # a second run into out_dir gets LockedError at once, naming this one

`fcntl.flock` without waiting. The kernel releases the lock when its process dies (kill -9, OOM,
node reboot), so a lock file left behind never blocks a later run; the file itself stays (deleting
it would let two runs lock two different files of the same name). While held, it records who holds
it (pid, host, start time, command) so the refused run can say so in one line.

`shared=True` takes a shared lock instead: holders of shared locks run side by side (e.g. the map
tasks of a Slurm array), and all of them exclude an exclusive holder; the record names the first
shared holder still running. `ensure_unlocked` checks
without taking the lock or writing anything (for checks that must leave the folder untouched).
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import re
import shlex
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
# flock on a file system without lock support (some NFS/Lustre mounts) fails with one of these.
_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}
# Command-line values of keys like these are masked in the record (it is a file on disk).
_SECRET_KEY = re.compile(r"(key|token|secret|passw(or)?d|credential|auth)", re.I)
_URL_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.\-]*://)[^/@\s]+@", re.I)


# Lock file descriptors this process holds. A forked child (a multiprocessing worker) would share
# the lock and keep it after the parent died, naming a dead pid: children close their copies.
_HELD_FDS: set[int] = set()


def _close_in_child() -> None:
    for fd in _HELD_FDS:
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD_FDS.clear()


os.register_at_fork(after_in_child=_close_in_child)


class LockedError(RuntimeError):
    """Another live process holds the folder's lock; the message names it in one line."""

    def __init__(self, folder: Path, holder: dict | None):
        self.folder = Path(folder)
        self.holder = holder or {}
        h = self.holder
        if h.get("pid"):
            who = f"{h.get('app') or 'another run'} (pid {h['pid']} on host {h.get('host', '?')}"
            who += f", started {h['started']}" if h.get("started") else ""
            who += f": {h['command']})" if h.get("command") else ")"
        else:
            who = "another process (it has not recorded itself yet)"
        super().__init__(f"{self.folder} is in use by {who}; wait for it to finish or stop it, or choose "
                         "another folder (a run that died does not hold the lock)")


def masked_command(argv: list[str]) -> str:
    """The command line with secret-looking values and URL credentials masked, on one line."""
    out = []
    for arg in argv:
        key, eq, value = arg.partition("=")
        if eq and _SECRET_KEY.search(key):
            arg = f"{key}=***"
        out.append(_URL_USERINFO.sub(r"\g<scheme>***@", arg))
    text = shlex.join(out).replace("\n", "\\n").replace("\r", "\\r")
    return text if len(text) <= 300 else text[:297] + "..."


def _program() -> list[str]:
    """How this process was started: `python -m data_prep` for a package's __main__, else the script."""
    prog = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path("python")
    if prog.name == "__main__.py":
        return ["python", "-m", prog.parent.name]
    return [prog.name]


def _record(app_name: str, shared: bool) -> dict:
    return {"app": app_name, "pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": masked_command([*_program(), *sys.argv[1:]]),
            "mode": "shared" if shared else "exclusive"}


def _read_holder(path: Path, wait_s: float = 0.5) -> dict | None:
    """The holder's record; it is written just after the lock is taken, so wait a moment for it."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            text = path.read_text(encoding="utf-8")
            holder = json.loads(text) if text.strip() else None
        except (OSError, ValueError):
            holder = None
        if isinstance(holder, dict) or time.monotonic() >= deadline:
            return holder if isinstance(holder, dict) else None
        time.sleep(0.05)


def _write_record(fd: int, record: dict) -> None:
    """Best effort: a full disk must not stop a run that holds the lock (the lock is the flock)."""
    data = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
    except OSError:
        pass


def _try_lock(fd: int, shared: bool) -> bool:
    """True when locked; False when another process holds it; raises other OSErrors."""
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


@contextmanager
def run_lock(folder: str | os.PathLike, app_name: str, *, shared: bool = False) -> Iterator[Path]:
    """Hold the lock on `folder` (created if missing) for the block; LockedError at once if taken."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        try:
            locked = _try_lock(fd, shared)
        except OSError as e:
            if e.errno not in _UNSUPPORTED:
                raise
            log.warning("%s: this file system does not support locks (%s); a second run into the same "
                        "folder cannot be detected", folder, e.strerror)
            locked = None
        if locked is False:
            raise LockedError(folder, _read_holder(path))
        record = _record(app_name, shared)
        if locked and (not shared or not _live_shared_record(path)):
            _write_record(fd, record)
        _HELD_FDS.add(fd)
        try:
            yield path
        finally:
            _HELD_FDS.discard(fd)
            if locked and (not shared or _is_mine(path, record)):
                try:
                    os.ftruncate(fd, 0)
                except OSError:
                    pass
    finally:
        os.close(fd)  # releases the flock


def _live_shared_record(path: Path) -> bool:
    """Whether the file names another shared holder that may still run (then it keeps naming it).

    An exclusive record cannot be live beside our shared lock; a pid gone from this host is stale."""
    holder = _read_holder(path, wait_s=0)
    if not holder or holder.get("mode") != "shared":
        return False
    if holder.get("host") == socket.gethostname():
        pid = holder.get("pid")
        if not isinstance(pid, int) or pid <= 0:
            return False
        try:
            os.kill(pid, 0)  # signal 0: only asks whether the process exists
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    return True


def _is_mine(path: Path, record: dict) -> bool:
    holder = _read_holder(path, wait_s=0) or {}
    return holder.get("pid") == record["pid"] and holder.get("host") == record["host"]


def ensure_unlocked(folder: str | os.PathLike, *, shared: bool = False) -> None:
    """Raise LockedError if `run_lock(folder, ..., shared=shared)` would be refused now.

    Creates and writes nothing (no lock file yet: nobody holds it)."""
    path = Path(folder) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    except OSError:  # unreadable lock file: run_lock will report it
        return
    try:
        try:
            ok = _try_lock(fd, shared)
        except OSError as e:
            if e.errno in _UNSUPPORTED:
                return
            raise
        if not ok:
            raise LockedError(Path(folder), _read_holder(path))
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


__all__ = ["LOCK_NAME", "LockedError", "ensure_unlocked", "masked_command", "run_lock"]
