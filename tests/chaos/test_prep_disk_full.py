"""A full disk (a small tmpfs as out_dir's file system): the run ends with one line naming ENOSPC and
the file, leaves no partial file, and the same command succeeds, byte-identical, once space is freed."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.atomic import is_temp
from tests.chaos.conftest import FAST, write_good_corpus
from tests.data_prep.conftest import output_bytes, prep_cli, run_prep

pytestmark = pytest.mark.chaos

ARGS = [*FAST, "shards.max_tokens=3000", "documents.rows_per_file=20"]


@pytest.mark.slow
@pytest.mark.parametrize("fraction", [0.3, 0.8], ids=["early", "late"])  # of the space a whole run takes
def test_full_disk_is_one_line_then_a_rerun_succeeds(tmpfs, tmp_path, fraction):
    src = tmp_path / "in"
    write_good_corpus(src)
    roomy = tmpfs(64 << 20)
    reference = roomy.path / "out"
    run_prep([f"source.path={src}", f"out_dir={reference}", *ARGS])
    need = roomy.used()

    disk = tmpfs(int(need * fraction))
    out = disk.path / "out"
    args = [f"source.path={src}", f"out_dir={out}", *ARGS]
    r = prep_cli(args)
    assert r.returncode == 2, (r.stdout[-1500:], r.stderr[-1500:])
    line = r.stderr.strip()
    assert "\n" not in line and "Traceback" not in line, line
    assert line.startswith(f"data_prep: error: {out}/") and "no space left on the device" in line, line
    assert "free some space and rerun" in line
    assert not [p for p in out.rglob("*") if is_temp(p)]  # partial files removed
    assert not (out / "manifest.json").exists()

    disk.resize(need * 2)  # space freed
    r = prep_cli(args)
    assert r.returncode == 0, r.stderr[-2000:]
    assert output_bytes(out) == output_bytes(reference)
    assert not [p for p in out.rglob("*") if is_temp(p)] and Path(out / "manifest.json").exists()
