"""`python -m export`: the Hydra app, its schema and its one-line errors (exit 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.config import ConfigError
from export.cli import precheck
from export.config import register, validate

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HYDRA_FULL_ERROR": "0"}
    return subprocess.run([sys.executable, "-m", "export", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300)


def test_export_command_writes_the_folder(hybrid_run, tmp_path):
    out = tmp_path / "exported"
    r = cli(f"checkpoint={hybrid_run['checkpoint']}", f"out_dir={out}", "model_name=cli-test", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "exported as remote_code" in r.stdout and "2 eval results" in r.stdout
    assert (out / "model.safetensors").is_file() and "# cli-test" in (out / "README.md").read_text()
    assert not (out / ".hydra").exists() and not list(out.glob("*.log"))  # nothing of Hydra's in the export

    again = cli(f"checkpoint={hybrid_run['checkpoint']}", f"out_dir={out}", cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.strip() == (f"error: config key 'out_dir': {out} already holds files; pass overwrite=true "
                                    "to replace it, or choose another out_dir")


@pytest.mark.parametrize("args, message", [
    (["formt=biogpt"], "config key 'formt': unknown key (did you mean 'format'?)"),
    (["dtype=float64"], "config key 'dtype': Invalid value 'float64'"),
    (["overwrite=maybe"], "config key 'overwrite': Value 'maybe' is not a valid bool"),
])
def test_bad_config_fails_in_one_line_before_anything_is_written(hybrid_run, tmp_path, args, message):
    out = tmp_path / "never"
    r = cli(f"checkpoint={hybrid_run['checkpoint']}", f"out_dir={out}", *args, cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith(f"error: {message}") and r.stderr.count("\n") == 1, r.stderr
    assert not out.exists()


def test_biogpt_format_for_a_hybrid_model_is_refused_and_leaves_nothing(hybrid_run, tmp_path):
    out = tmp_path / "never"
    r = cli(f"checkpoint={hybrid_run['checkpoint']}", f"out_dir={out}", "format=biogpt", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "config key 'format'" in r.stderr and "local attention layers have no BioGPT equivalent" in r.stderr
    assert not out.exists() and not list(tmp_path.glob(".never.*"))


def test_schema_composes_and_validates(hybrid_run, tmp_path):
    from hydra import compose, initialize_config_dir

    register()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="export", overrides=[f"checkpoint={hybrid_run['checkpoint']}",
                                                       f"out_dir={tmp_path / 'x'}", "format=remote_code"])
    c = validate(cfg)
    assert c.format.value == "remote_code" and c.dtype.value == "float32" and not c.overwrite
    assert precheck("export", ["out_dir=x"], validate) == ("config key 'checkpoint': missing; pass "
                                                           "checkpoint=<run_dir>/checkpoints/last.ckpt (or an exported folder)")
    assert precheck("export", ["--help"], validate) is None  # Hydra's own flags go to Hydra


def test_validate_names_the_key(hybrid_run, tmp_path):
    from export.config import ExportConfig

    with pytest.raises(ConfigError, match=r"config key 'eval_results\[0\]': .* is not a file"):
        validate(ExportConfig(checkpoint=str(hybrid_run["checkpoint"]), out_dir=str(tmp_path / "o"),
                              eval_results=[str(tmp_path / "missing.json")]))
    with pytest.raises(ConfigError, match="config key 'checkpoint': .* is a folder without config.json"):
        validate(ExportConfig(checkpoint=str(tmp_path), out_dir=str(tmp_path / "o")))
