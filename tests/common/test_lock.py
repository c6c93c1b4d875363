"""common.lock: one run per folder, checked with real processes (flock is per process)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from common.lock import LOCK_NAME, LockedError, ensure_unlocked, masked_command, run_lock
from tests.conftest import ROOT

HOLDER = textwrap.dedent("""
    import sys, time
    from common.lock import run_lock
    with run_lock(sys.argv[1], "holder-app", shared=sys.argv[2] == "shared"):
        print("locked", flush=True)
        if sys.argv[3] == "wait":
            time.sleep(60)
    print("released", flush=True)
""")

CONTENDER = textwrap.dedent("""
    import sys
    from common.lock import LockedError, run_lock
    try:
        with run_lock(sys.argv[1], "contender", shared=sys.argv[2] == "shared"):
            print("got it")
    except LockedError as e:
        print(e, file=sys.stderr)
        sys.exit(3)
""")


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}


def start_holder(folder: Path, mode: str = "exclusive", wait: bool = True) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), mode, "wait" if wait else "go"],
                         stdout=subprocess.PIPE, text=True, env=_env())
    assert p.stdout is not None and p.stdout.readline().strip() == "locked"
    return p


def contend(folder: Path, mode: str = "exclusive") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CONTENDER, str(folder), mode], capture_output=True, text=True,
                          env=_env(), timeout=60)


def stop(p: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    p.send_signal(sig)
    p.wait(timeout=30)


def test_a_second_process_is_refused_at_once_naming_the_holder(tmp_path):
    holder = start_holder(tmp_path)
    try:
        r = contend(tmp_path)
        assert r.returncode == 3 and r.stdout == ""
        line = r.stderr.strip()
        assert "\n" not in line
        assert f"pid {holder.pid}" in line and f"host {socket.gethostname()}" in line and str(tmp_path) in line
        assert "holder-app" in line
        record = json.loads((tmp_path / LOCK_NAME).read_text())
        assert record["pid"] == holder.pid and record["mode"] == "exclusive" and record["started"]
        with pytest.raises(LockedError, match=f"pid {holder.pid}"):  # this process is refused too
            with run_lock(tmp_path, "test"):
                pass
    finally:
        stop(holder)


def test_released_on_exit_and_a_killed_holder_does_not_block(tmp_path):
    holder = start_holder(tmp_path, wait=False)
    assert holder.stdout.readline().strip() == "released"
    holder.wait(timeout=30)
    assert (tmp_path / LOCK_NAME).read_text() == ""  # the record is cleared with the lock
    assert contend(tmp_path).stdout.strip() == "got it"

    killed = start_holder(tmp_path)
    stop(killed, signal.SIGKILL)  # no cleanup ran: the file still names the dead process
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == killed.pid
    with run_lock(tmp_path, "after-the-kill") as lock_file:
        record = json.loads(lock_file.read_text())
        assert record["pid"] == os.getpid() and record["app"] == "after-the-kill"


FORKER = textwrap.dedent("""
    import os, sys, time
    from common.lock import run_lock
    with run_lock(sys.argv[1], "forker"):
        child = os.fork()  # as a multiprocessing worker is made
        if child == 0:
            time.sleep(60)
            os._exit(0)
        print(child, flush=True)
        time.sleep(60)
""")


def test_a_forked_worker_does_not_keep_the_lock_of_a_killed_parent(tmp_path):
    p = subprocess.Popen([sys.executable, "-c", FORKER, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=_env())
    child = int(p.stdout.readline())
    try:
        stop(p, signal.SIGKILL)
        os.kill(child, 0)  # the worker still runs...
        assert contend(tmp_path).stdout.strip() == "got it"  # ...and holds nothing
    finally:
        os.kill(child, signal.SIGKILL)


def test_shared_holders_run_side_by_side_and_exclude_an_exclusive_one(tmp_path):
    a = start_holder(tmp_path, "shared")
    try:
        assert contend(tmp_path, "shared").stdout.strip() == "got it"
        r = contend(tmp_path, "exclusive")
        assert r.returncode == 3 and f"pid {a.pid}" in r.stderr
    finally:
        stop(a)
    b = start_holder(tmp_path, "exclusive")
    try:
        assert contend(tmp_path, "shared").returncode == 3
    finally:
        stop(b)


def test_ensure_unlocked_checks_without_writing(tmp_path):
    folder = tmp_path / "out"
    ensure_unlocked(folder)  # no folder, no lock file: nothing held, nothing created
    assert not folder.exists()
    holder = start_holder(folder)
    try:
        with pytest.raises(LockedError, match=f"pid {holder.pid}"):
            ensure_unlocked(folder)
        before = (folder / LOCK_NAME).read_text()
    finally:
        stop(holder)
    ensure_unlocked(folder)
    assert (folder / LOCK_NAME).read_text() in ("", before)


def test_the_record_masks_secrets_of_the_command_line():
    cmd = masked_command(["train", "logger.api_key=abc123", "source.base_url=https://u:pw@host/x", "lr=1e-3",
                          "note=a\nb"])
    assert "abc123" not in cmd and "pw@" not in cmd and "u:" not in cmd
    assert "logger.api_key=***" in cmd and "https://***@host/x" in cmd and "lr=1e-3" in cmd
    assert "\n" not in cmd
