"""common.atomic: whole-or-nothing writes, normal file modes, and cleanup of only our temp files."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pytest

from common.atomic import (
    TEMP_SUFFIX,
    atomic_open,
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    is_temp,
    remove_stale_temps,
)


def test_write_replaces_whole_file_with_umask_mode(tmp_path: Path):
    target = tmp_path / "sub" / "out.txt"
    atomic_write_text(target, "first")
    atomic_write_text(target, "second")
    assert target.read_text() == "second"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask  # not mkstemp's 0600
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]


def test_error_keeps_previous_file_and_removes_temp(tmp_path: Path):
    target = tmp_path / "out.bin"
    atomic_write_bytes(target, b"old")
    with pytest.raises(RuntimeError):
        with atomic_open(target, "wb") as f:
            f.write(b"half of the new")
            raise RuntimeError("killed half-way")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_atomic_path_for_writers_that_take_a_name(tmp_path: Path):
    target = tmp_path / "t.json"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and is_temp(tmp) and not target.exists()
        tmp.write_text("{}")
    assert target.read_text() == "{}"


def test_json_format_is_stable(tmp_path: Path):
    atomic_write_json(tmp_path / "a.json", {"b": 1, "a": "μM"})
    text = (tmp_path / "a.json").read_text(encoding="utf-8")
    assert text == '{\n  "a": "μM",\n  "b": 1\n}\n'
    assert json.loads(text) == {"a": "μM", "b": 1}


def test_disk_full_is_one_line_naming_the_file(tmp_path: Path, monkeypatch):
    target = tmp_path / "ckpt.bin"
    atomic_write_bytes(target, b"previous")

    def no_space(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(OSError) as exc:
        atomic_write_bytes(target, b"new")
    msg = str(exc.value)
    assert str(target) in msg and "no space left" in msg and "\n" not in msg
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.bin"]


def test_remove_stale_temps_leaves_user_files(tmp_path: Path):
    (tmp_path / "d").mkdir()
    ours = tmp_path / "d" / f".shard.bin.abc{TEMP_SUFFIX}"
    ours.write_bytes(b"x")
    user = [tmp_path / "user_notes.tmp", tmp_path / "d" / "x.tmp", tmp_path / f"visible{TEMP_SUFFIX}"]
    for p in user:
        p.write_text("keep")
    assert remove_stale_temps(tmp_path) == 1
    assert not ours.exists()
    assert all(p.read_text() == "keep" for p in user)


def test_bad_mode_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="mode"):
        with atomic_open(tmp_path / "x", "a"):
            pass
