"""slurm/submit.py and conf/hydra/launcher: Slurm resources rendered from the composed config
(no cluster needed: dry runs and config composition only)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from .slurm_helpers import PYTHON, ROOT, SUBMIT

sys.path.insert(0, str(ROOT / "slurm"))
import submit  # noqa: E402  (slurm/ is a folder of scripts, not a package)


@pytest.fixture
def dry_run(capsys):
    def run(*args: str) -> list[str]:
        rc = submit.main(["--dry-run", *args])
        out = capsys.readouterr()
        assert rc == 0, out.err
        return out.out.strip().splitlines()
    return run


def test_pretrain_resources_follow_trainer_devices_and_nodes(tmp_path, dry_run):
    (line,) = dry_run("pretrain", "experiment=biogpt_8gpu", "trainer.num_nodes=2", f"run_dir={tmp_path}/r")
    assert "--nodes=2" in line and "--ntasks-per-node=8" in line and "--gpus-per-node=8" in line
    assert "--cpus-per-task=7" in line  # data.num_workers=6 in biogpt_8gpu, + the rank itself
    assert "slurm/pretrain_multinode.sbatch" in line
    assert f"--output={tmp_path}/r/slurm-%j.out" in line
    assert line.endswith(f"run_dir={tmp_path}/r")


def test_single_node_cpu_job_asks_for_no_gpu(tmp_path, dry_run):
    (line,) = dry_run("pretrain", "experiment=demo", "trainer.devices=2", f"run_dir={tmp_path}/r")
    assert "--nodes=1" in line and "--ntasks-per-node=2" in line and "--gpus-per-node" not in line
    assert "slurm/pretrain.sbatch" in line


def test_prep_is_fetch_then_map_array_then_merge(tmp_path, dry_run):
    fetch, mapper, merge = dry_run("prep", "source=demo", f"out_dir={tmp_path}/d", "task.count=4", "workers=2")
    assert "prep_fetch.sbatch" in fetch and "--dependency" not in fetch
    assert "prep_map.sbatch" in mapper and "--array=0-3" in mapper and "--cpus-per-task=2" in mapper
    assert "--dependency=afterok:$FETCH_JOB" in mapper
    assert "prep_merge.sbatch" in merge and "--dependency=afterok:$MAP_JOB" in merge
    assert "--cpus-per-task=2" in merge  # documents parts and shards are written by `workers` processes
    # The templates set stage/task themselves; a user's task.count is not passed through twice.
    assert all("task.count" not in line for line in (fetch, mapper, merge))


@pytest.mark.parametrize(("args", "key"), [
    (["pretrain", "trainer.devices=0", "run_dir=/tmp/x"], "trainer.devices"),
    (["pretrain", "trainer.max_stepz=3", "run_dir=/tmp/x"], "trainer.max_stepz"),
    (["prep", "source=demo", "out_dir=/tmp/x", "task.count=0"], "task.count"),
])
def test_bad_config_fails_at_submission_naming_the_key(args, key, capsys):
    assert submit.main(["--dry-run", *args]) == 2
    err = capsys.readouterr().err
    assert key in err and err.startswith("submit: error:")


def test_cli_runs_as_a_script(tmp_path):
    """`python slurm/submit.py` (not imported): the repo root must be importable for validation."""
    r = subprocess.run([PYTHON, str(SUBMIT), "--dry-run", "pretrain", "experiment=demo", f"run_dir={tmp_path}"],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "--ntasks-per-node=1" in r.stdout


def test_train_resources_reject_non_numeric_devices():
    cfg = OmegaConf.create({"trainer": {"devices": "auto", "num_nodes": 1, "accelerator": "gpu"},
                            "data": {"num_workers": 2}})
    with pytest.raises(submit.SubmitError, match="trainer.devices"):
        submit.train_resources(cfg)


@pytest.mark.parametrize("launcher", ["slurm", "slurm_local"])
def test_launcher_config_derives_tasks_from_devices_and_keeps_run_dir(launcher):
    import train.config  # noqa: F401  registers the schema conf/train.yaml composes on

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[f"hydra/launcher={launcher}", "experiment=biogpt_8gpu",
                                          "trainer.num_nodes=3", "run_dir=/scratch/r"], return_hydra_config=True)
    lc = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert lc["tasks_per_node"] == 8 and lc["nodes"] == 3
    assert lc["gpus_per_node"] == (8 if launcher == "slurm" else None)
    # Requeue is the training process's: submitit's signal (USR2) is replaced, its requeue count is 0.
    assert lc["additional_parameters"]["signal"] == "USR1@90" and lc["max_num_timeout"] == 0
    assert lc["additional_parameters"]["requeue"] is True
    assert lc["submitit_folder"].startswith("/scratch/r/")
    sweep = OmegaConf.to_container(cfg.hydra.sweep, resolve=False)
    assert sweep["dir"] == "${run_dir}"  # no timestamped multirun/ folder
