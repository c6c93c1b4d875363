"""`python -m eval` on prediction files (the interface the acceptance checks use) and its errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from eval import TASKS
from eval.app import run
from eval.config import build_config, compose
from eval.errors import ConfigError, DataFileError, EvalError
from tests.conftest import ROOT, shared_path


def _cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "eval", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def _jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_cli_pubmedqa_predictions(tmp_path):
    gold = json.loads(shared_path("pubmedqa", "test_ground_truth.json").read_text())
    # 400 right, 100 always "maybe" (wrong unless gold is maybe).
    rows = [{"id": int(k), "prediction": f"the answer to the question given the context is {v if i < 400 else 'maybe'}."}
            for i, (k, v) in enumerate(gold.items())]
    expected = (400 + sum(v == "maybe" for v in list(gold.values())[400:])) / 500
    out = tmp_path / "out"
    p = _cli("task=pubmedqa", f"predictions={_jsonl(tmp_path / 'p.jsonl', rows)}", f"out_dir={out}")
    assert p.returncode == 0, p.stderr
    res = json.loads((out / "results.json").read_text())
    assert res["accuracy"] == pytest.approx(expected) and 0 < res["macro_f1"] < 1
    assert "| accuracy (%) |" in (out / "results.md").read_text()
    assert (out / "confusion_matrix.png").exists() and (out / ".hydra" / "config.yaml").exists()


def test_cli_ddi_predictions_case_insensitive(tmp_path):
    docs = json.loads(shared_path("biogpt", "DDI", "raw", "test.json").read_text())
    rows = [{"id": k, "prediction": "; ".join(f"the interaction between {t['drug'].upper()} and {t['target']} is "
                                              f"{t['interaction']}" for t in v["triples"]) + "."}
            for k, v in docs.items()]
    out = tmp_path / "out"
    p = _cli("task=ddi", f"predictions={_jsonl(tmp_path / 'd.jsonl', rows)}", f"out_dir={out}")
    assert p.returncode == 0, p.stderr
    res = json.loads((out / "results.json").read_text())
    assert res["precision"] == res["recall"] == res["f1"] == 1.0


def test_cli_unknown_task_names_the_key(tmp_path):
    p = _cli("task=squad", "predictions=x.jsonl", f"out_dir={tmp_path}")
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        f"error: config key 'task': unknown task 'squad'; choose one of {', '.join(TASKS)}"]


def test_every_task_config_composes():
    for task in TASKS:
        extra = {"perplexity": ["checkpoint=pyproject.toml"], "generate": ["checkpoint=pyproject.toml", "task.prompt=hi"]}
        cfg = build_config(compose([f"task={task}", "out_dir=/tmp/x", *extra.get(task, ["predictions=p.jsonl"])]))
        assert cfg.task.name == task and cfg.data_dir.is_absolute()


@pytest.mark.parametrize("overrides, key", [
    (["task=pubmedqa", "out_dir=/tmp/x"], "checkpoint"),
    (["task=pubmedqa", "out_dir=/tmp/x", "predictions=a", "checkpoint=pyproject.toml"], "predictions"),
    (["task=perplexity", "out_dir=/tmp/x", "predictions=a"], "predictions"),
    (["task=ddi", "out_dir=/tmp/x", "checkpoint=/nonexistent.ckpt"], "checkpoint"),
    (["task=pubmedqa", "out_dir=/tmp/x", "predictions=a", "limit=0"], "limit"),
    (["task=pubmedqa", "out_dir=/tmp/x", "predictions=a", "task.mode=beam"], "task.mode"),
    (["task=pubmedqa", "out_dir=/tmp/x", "predictions=a", "generation.top_p=2"], "generation.top_p"),
    (["task=pubmedqa", "out_dir=/tmp/x", "predictions=a", "device=tpu"], "device"),
    (["task=generate", "out_dir=/tmp/x", "checkpoint=pyproject.toml"], "task.prompt"),
])
def test_bad_config_names_the_key(overrides, key):
    with pytest.raises(ConfigError) as e:
        build_config(compose(overrides))
    assert e.value.key == key


def test_missing_data_file_names_the_path(tmp_path):
    with pytest.raises(DataFileError, match=r"nowhere/pubmedqa/test_ground_truth.json: missing .* data_dir="):
        run(compose(["task=pubmedqa", f"predictions={tmp_path}/p.jsonl", f"out_dir={tmp_path}",
                     f"data_dir={tmp_path}/nowhere"]))


def test_bad_prediction_files(tmp_path):
    data = shared_path()
    base = ["task=ddi", f"out_dir={tmp_path}", f"data_dir={data}"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "DDI-DrugBank.d700", "prediction": "x"}\n{not json\n')
    with pytest.raises(DataFileError, match=r"bad.jsonl:2: not valid JSON"):
        run(compose([*base, f"predictions={bad}"]))
    dup = _jsonl(tmp_path / "dup.jsonl", [{"id": "DDI-DrugBank.d700", "prediction": "x"}] * 2)
    with pytest.raises(DataFileError, match="duplicate id"):
        run(compose([*base, f"predictions={dup}"]))
    other = _jsonl(tmp_path / "other.jsonl", [{"id": "12377809", "prediction": "x"}])
    with pytest.raises(EvalError, match="none of its 1 ids is a ddi test id"):
        run(compose([*base, f"predictions={other}"]))
    with pytest.raises(DataFileError, match="prediction file not found"):
        run(compose([*base, f"predictions={tmp_path}/absent.jsonl"]))


def test_missing_predictions_count_as_misses(tmp_path):
    data = shared_path()
    one = _jsonl(tmp_path / "one.jsonl", [{"id": "12377809", "prediction": "the answer to the question given the context is yes."}])
    r = run(compose(["task=pubmedqa", f"predictions={one}", f"out_dir={tmp_path}", f"data_dir={data}"]))
    assert r["counts"]["missing"] == 499 and r["metrics"]["accuracy"] == pytest.approx(1 / 500)
    r = run(compose(["task=pubmedqa", f"predictions={one}", f"out_dir={tmp_path}", f"data_dir={data}", "limit=1"]))
    assert r["metrics"]["accuracy"] == 1.0 and r["limit"] == 1
