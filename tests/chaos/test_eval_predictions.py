"""Malformed prediction files given to `python -m eval`: every class is one line naming `file:line`
(or the file), exit 2, no traceback; missing test ids are a warning with their count, or an error
with strict_ids=true. Once an empty file scored accuracy 0.0 with exit 0, and a non-UTF-8 byte gave
a raw UnicodeDecodeError traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from eval.app import run
from eval.config import compose
from tasks.base import DataFileError
from tasks.pubmedqa import ANSWER_PREFIX
from tests.conftest import ROOT, shared_path

pytestmark = pytest.mark.chaos

GOOD = f'{{"id": "12377809", "prediction": "{ANSWER_PREFIX} yes."}}\n'.encode()


def _run(tmp_path: Path, pred: Path, *extra: str):
    data = shared_path()
    return run(compose(["task=pubmedqa", f"predictions={pred}", f"out_dir={tmp_path / 'out'}",
                        f"task.bench_dir={data}", *extra]))


@pytest.mark.parametrize("content, where, reason", [
    (b"", "", "no predictions (the file is empty)"),
    (b"\n  \n", "", "no predictions (the file is empty)"),
    (GOOD + b"{not json\n", ":2", "not valid JSON"),
    (GOOD + b'["12377809", "yes"]\n', ":2", 'each line needs "id" and "prediction" keys'),
    (GOOD + b'{"prediction": "yes"}\n', ":2", 'each line needs "id" and "prediction" keys'),
    (GOOD + b'{"id": "26163474"}\n', ":2", 'each line needs "id" and "prediction" keys'),
    (GOOD + b'{"id": "26163474", "prediction": 3}\n', ":2", '"prediction" must be a string'),
    (GOOD + b'{"id": ["26163474"], "prediction": "yes"}\n', ":2", '"id" must be a string or an integer, got list'),
    (GOOD + b'{"id": null, "prediction": "yes"}\n', ":2", '"id" must be a string or an integer, got NoneType'),
    (GOOD + GOOD, ":2", "duplicate id '12377809'"),
    (GOOD + b'{"id": "26163474", "prediction": "caf\xe9"}\n', ":2", "not UTF-8 (byte 0xe9 at column"),
    (b"\xff\xfe" + GOOD, ":1", "not UTF-8 (byte 0xff at column 1)"),
])
def test_malformed_prediction_file_is_one_error_naming_file_and_line(tmp_path, content, where, reason):
    pred = tmp_path / "p.jsonl"
    pred.write_bytes(content)
    with pytest.raises(DataFileError) as e:
        _run(tmp_path, pred)
    msg = str(e.value)
    assert msg.startswith(f"{pred}{where}: ") and reason in msg, msg
    assert "\n" not in msg
    assert not (tmp_path / "out" / "results.json").exists()


def test_missing_ids_warn_with_their_count_or_fail_with_strict_ids(tmp_path, caplog):
    pred = tmp_path / "half.jsonl"
    pred.write_bytes(GOOD)
    with caplog.at_level("WARNING", logger="eval.app"):
        r = _run(tmp_path, pred)
    assert r["counts"]["missing"] == 499
    warned = [rec.getMessage() for rec in caplog.records if "no prediction" in rec.getMessage()]
    assert warned and "499 of 500 test ids have no prediction" in warned[0], caplog.text
    with pytest.raises(DataFileError, match=r"half.jsonl: 499 of 500 test ids have no prediction.*strict_ids=true"):
        _run(tmp_path, pred, "strict_ids=true")


def test_cli_non_utf8_is_one_line_without_traceback(tmp_path):
    data = shared_path()
    pred = tmp_path / "latin1.jsonl"
    bad = '{"id": "26163474", "prediction": "Answer: maybe. Caf\u00e9"}\n'.encode("latin-1")
    pred.write_bytes(GOOD + bad)
    p = subprocess.run([sys.executable, "-m", "eval", "task=pubmedqa", f"predictions={pred}",
                        f"out_dir={tmp_path / 'out'}", f"task.bench_dir={data}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    column = bad.index(b"\xe9") + 1
    assert p.stderr.strip().splitlines() == [
        f"error: {pred}:2: not UTF-8 (byte 0xe9 at column {column}); save the file as UTF-8"]
