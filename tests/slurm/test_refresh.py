"""The refresh cycle (issue 13): `submit.py refresh` renders append -> continued pretraining ->
evaluation as three dependent jobs, and refresh_eval.sbatch (run here with plain bash: no
cluster needed) scores both models per generation and moves `latest` only when both succeeded."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .slurm_helpers import PYTHON, ROOT, TINY_TRAIN, assert_completed, submit_with, tail, wait_job

sys.path.insert(0, str(ROOT / "slurm"))
import submit  # noqa: E402  (slurm/ is a folder of scripts, not a package)


@pytest.fixture
def root(tmp_path):
    """A refresh root whose `latest` points at a previous cycle with a checkpoint."""
    prev = tmp_path / "refresh" / "2025-01-06"
    (prev / "checkpoints").mkdir(parents=True)
    (prev / "checkpoints" / "last.ckpt").write_bytes(b"not read at submission")
    (tmp_path / "refresh" / "latest").symlink_to(prev)
    return tmp_path / "refresh"


def _dry(capsys, *args):
    rc = submit.main(["--dry-run", *args])
    out = capsys.readouterr()
    return rc, out.out.strip().splitlines(), out.err


def test_refresh_is_append_then_continue_then_evaluate(root, tmp_path, capsys):
    data = tmp_path / "pubmed"
    rc, lines, err = _dry(capsys, "--cycle=2025-01-13", "--eval=task.block_size=64", "--time=08:00:00", "refresh",
                          "experiment=biogpt_continue", f"task.data_dir={data}", f"run_dir={root}")
    assert rc == 0, err
    prep, train, evaluate = lines
    cycle, prev_ckpt = root / "2025-01-13", root / "2025-01-06" / "checkpoints" / "last.ckpt"
    assert "slurm/prep_append.sbatch" in prep and "--dependency" not in prep
    assert prep.endswith(f"source=pubmed_updates source.after=corpus out_dir={data}")
    assert "slurm/pretrain.sbatch" in train and "'--dependency=afterok:$PREP_JOB'" in train
    assert "--gpus-per-node=8" in train and "--time=08:00:00" in train
    # latest resolved at submission: a later cycle moving it does not change this one's start
    assert train.endswith(f"task.init_from={prev_ckpt} task.data_dir={data} run_dir={cycle}")
    assert "slurm/refresh_eval.sbatch" in evaluate and "'--dependency=afterok:$PRETRAIN_JOB'" in evaluate
    assert evaluate.endswith(f"{data} {prev_ckpt} {cycle} {root / 'latest'} task.block_size=64")
    assert f"--output={cycle}/slurm-eval-%j.out" in evaluate


def test_prep_overrides_replace_the_default_source(root, tmp_path, capsys):
    rc, lines, err = _dry(capsys, "--cycle=c2", "--prep=source=local", f"--prep=source.path={tmp_path}",
                          "refresh", "experiment=demo", f"task.data_dir={tmp_path / 'd'}", f"run_dir={root}")
    assert rc == 0, err
    assert lines[0].endswith(f"source=local source.path={tmp_path} out_dir={tmp_path / 'd'}")
    assert "--gpus-per-node" not in lines[1] + lines[2]  # a CPU experiment asks for no GPU


@pytest.mark.parametrize(("args", "message"), [
    (["refresh", "experiment=demo", "task.data_dir=/d", "run_dir={tmp}/empty"],
     "latest/checkpoints/last.ckpt does not exist: this is the first cycle; pass --init-from"),
    (["--init-from={tmp}/nothing.ckpt", "refresh", "experiment=demo", "task.data_dir=/d", "run_dir={tmp}/r"],
     "--init-from={tmp}/nothing.ckpt: no such checkpoint"),
    (["refresh", "experiment=demo", "task.data_dir=/d", "run_dir={root}", "task.init_from=/x.ckpt"],
     "leave task.init_from and resume out"),
    (["--cycle=latest", "refresh", "experiment=demo", "task.data_dir=/d", "run_dir={root}"], "other than 'latest'"),
    (["--cycle=2025-01-06", "refresh", "experiment=demo", "task.data_dir=/d", "run_dir={root}"],
     "already holds a training run: pass --cycle"),
    (["refresh", "experiment=demo", "task.data_dir=/d", "run_dir={root}", "data.replay=1.5"], "data.replay"),
    (["--prep=sourze=x", "refresh", "experiment=demo", "task.data_dir=/d", "run_dir={root}"], "sourze"),
    (["--eval=task.blok_size=3", "refresh", "experiment=demo", "task.data_dir=/d", "run_dir={root}"], "blok_size"),
    (["--cycle=x", "pretrain", "experiment=demo", "run_dir={tmp}/p"], "--cycle apply to refresh only"),
])
def test_bad_refresh_submissions_fail_naming_the_cause(root, tmp_path, capsys, args, message):
    args = [a.format(tmp=tmp_path, root=root) for a in args]
    rc, _, err = _dry(capsys, *args)
    assert rc == 2 and err.startswith("submit: error:")
    assert message.format(tmp=tmp_path) in err


@pytest.fixture(scope="module")
def two_generation_run(tmp_path_factory):
    """A 2-generation corpus and a 2-step training run on it (stands for both models)."""
    from tests.train.conftest import append_text_generation, compose, tiny_overrides, write_token_data
    from train.run import run

    base = tmp_path_factory.mktemp("refresh_eval")
    data = write_token_data(base / "data")
    append_text_generation(data, 60, {"val": [1]})
    run(compose(tiny_overrides(data, base / "prev", 2)))
    return data, base / "prev"


def _refresh_eval(*args):
    env = {**os.environ, "BIOGPT_ROOT": str(ROOT), "BIOGPT_PYTHON": PYTHON, "WANDB_MODE": "disabled"}
    return subprocess.run(["bash", str(ROOT / "slurm" / "refresh_eval.sbatch"), *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, env=env)


def test_refresh_eval_scores_both_models_per_generation_then_moves_latest(two_generation_run, tmp_path):
    data, prev = two_generation_run
    cycle, latest = tmp_path / "c1", tmp_path / "latest"
    (cycle / "checkpoints").mkdir(parents=True)
    (cycle / "checkpoints" / "last.ckpt").symlink_to(prev / "checkpoints" / "last.ckpt")
    latest.symlink_to(prev)
    r = _refresh_eval(data, prev / "checkpoints" / "last.ckpt", cycle, latest, "task.block_size=32",
                      "task.max_windows=4")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for out in ("eval", "eval_before"):
        results = json.loads((cycle / out / "results.json").read_text())
        assert set(results["by_generation"]) == {"1", "2"}, out
        assert results["by_generation"]["1"]["retired_documents"] == 1
    assert os.readlink(latest) == str(cycle)


def test_refresh_eval_leaves_latest_alone_when_an_evaluation_fails(two_generation_run, tmp_path):
    data, prev = two_generation_run
    cycle, latest = tmp_path / "c1", tmp_path / "latest"
    cycle.mkdir()  # no checkpoint: the continued pretraining did not produce one
    latest.symlink_to(prev)
    r = _refresh_eval(data, prev / "checkpoints" / "last.ckpt", cycle, latest, "task.block_size=32")
    assert r.returncode != 0
    assert os.readlink(latest) == str(prev)
    assert not (cycle / "eval_before").exists()  # the second evaluation never ran


def test_scrontab_line_submits_a_valid_cycle(root, tmp_path, capsys):
    """slurm/refresh.scrontab's command, with its placeholder paths replaced, is a valid submission."""
    line = next(x for x in (ROOT / "slurm" / "refresh.scrontab").read_text().splitlines()
                if x and not x.startswith("#"))
    assert line.split()[:5] == ["0", "3", "*", "*", "1"]  # Mondays 03:00
    args = line.split("slurm/submit.py", 1)[1].split()
    args = [a.replace("/scratch/USER/refresh", str(root)).replace("/scratch/USER/pubmed", str(tmp_path / "d"))
            for a in args]
    rc, lines, err = _dry(capsys, *args)
    assert rc == 0, err
    assert len(lines) == 3 and f"run_dir={root}/" in lines[1] and "prep_append.sbatch" in lines[0]


# prep settings of generation 1 (an append takes them from the corpus; repeating them is allowed)
CLUSTER_PREP = ["source=local", "tokenizer.vocab_size=600", "split.val_fraction=0.1", "progress=false",
                "summary.histogram=false", "summary.print=false", "decontam.enabled=false", "source.follow_symlinks=true"]


@pytest.mark.slurm
@pytest.mark.slow
def test_refresh_cycle_runs_on_the_cluster(tmp_path, jobs):
    """submit.py refresh on a real cluster: append real PubMed files -> continue -> evaluate -> latest."""
    from tests.conftest import shared_path
    from tests.train.conftest import compose, tiny_overrides
    from train.run import run

    g1, g2 = tmp_path / "g1", tmp_path / "g2"
    for folder, names in ((g1, ("pubmedsample_2019.split-a.xml.gz", "biopython_pubmed1.xml")),
                          (g2, ("medline16n0902_excerpt.split-a.xml.gz", "eutils_efetch.pubmed.xml"))):
        folder.mkdir()
        for name in names:
            (folder / name).symlink_to(shared_path("pubmed", name))
    data = tmp_path / "corpus"
    subprocess.run([PYTHON, "-m", "data_prep", f"source.path={g1}", f"out_dir={data}", *CLUSTER_PREP], cwd=ROOT,
                   check=True, capture_output=True, timeout=300)
    root = tmp_path / "refresh"
    run(compose(tiny_overrides(data, root / "first", 2)))
    train = [o for o in TINY_TRAIN if not o.startswith(("trainer.max_steps", "debug."))]
    ids = submit_with([f"--init-from={root / 'first' / 'checkpoints' / 'last.ckpt'}", "--cycle=c1",
                       *(f"--prep={o}" for o in (*CLUSTER_PREP, f"source.path={g2}")),
                       "--eval=task.block_size=32", "--eval=task.max_windows=4", "refresh", *train,
                       "trainer.max_steps=4", f"task.data_dir={data}", f"run_dir={root}"])
    jobs.extend(ids.values())
    cycle = root / "c1"
    recs = wait_job(ids["eval"], timeout=600)
    logs = "\n".join(f"--- {p.name}\n{tail(p)}" for p in sorted(cycle.glob("slurm-*.out")))
    assert_completed(recs)  # afterok: the append and the training completed before it started
    assert os.path.realpath(root / "latest") == str(cycle), logs
    manifest = json.loads((data / "manifest.json").read_text())
    assert [g["generation"] for g in manifest["generations"]] == [1, 2], logs
    results = json.loads((cycle / "eval" / "results.json").read_text())
    assert set(results["by_generation"]) == {"1", "2"}
    assert (cycle / "eval_before" / "results.json").is_file()
    status = json.loads((cycle / "status.json").read_text())
    assert status["state"] == "completed" and set(status["data_generations"]) == {"1", "2"}
