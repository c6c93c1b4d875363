"""`python -m eval` on prediction files (the interface the acceptance checks use), its config and its errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException

import tasks
from eval.app import run
from eval.config import build_config, compose
from eval.errors import ConfigError, DataFileError
from tasks.pubmedqa import ANSWER_PREFIX
from tests.conftest import ROOT, shared_path

TASK_FILES = sorted(p.stem for p in (ROOT / "conf" / "task").glob("*.yaml"))
# Runs `python -m eval` as the command line does and reports which heavy frameworks it imported.
PROBE = """
import runpy, sys
sys.argv = ["eval", *sys.argv[1:]]
try:
    runpy.run_module("eval", run_name="__main__", alter_sys=True)
except SystemExit as e:
    code = e.code
else:
    code = 0
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "lightning", "pytorch_lightning", "train"))
print("HEAVY", heavy)
sys.exit(code)
"""


def _cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "eval", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def _jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_cli_pubmedqa_predictions_without_torch_or_lightning(tmp_path):
    gold = json.loads(shared_path("pubmedqa", "test_ground_truth.json").read_text())
    # 400 right, 100 always "maybe" (wrong unless gold is maybe).
    rows = [{"id": int(k), "prediction": f"{ANSWER_PREFIX} {v if i < 400 else 'maybe'}."}
            for i, (k, v) in enumerate(gold.items())]
    expected = (400 + sum(v == "maybe" for v in list(gold.values())[400:])) / 500
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, "-c", PROBE, "task=pubmedqa", f"predictions={_jsonl(tmp_path / 'p.jsonl', rows)}",
                        f"out_dir={out}"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "HEAVY []" in p.stdout, "scoring a prediction file imported torch, Lightning or train/: " + p.stdout
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


def test_cli_unknown_task_names_the_group(tmp_path):
    p = _cli("task=squad", "predictions=x.jsonl", f"out_dir={tmp_path / 'out'}")
    assert p.returncode == 1
    assert "Could not find 'task/squad'" in p.stderr and "\tpubmedqa" in p.stderr  # Hydra lists the options
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, line", [
    (["predictions=x.jsonl"], "error: config key 'task': missing; pass task=<{}>".format("|".join(tasks.names()))),
    (["task=pubmedqa", "predictions=x.jsonl"],
     "error: config key 'out_dir': missing; pass out_dir=<folder for results.json and results.md>"),
    (["task=pubmedqa", "predictions=x.jsonl", "limit=0"], "error: config key 'limit': must be in [1, inf], got 0"),
    (["task=pubmedqa", "predictions=x.jsonl", "generation.temperature=0"],
     "error: config key 'generation.temperature': must be in (0, inf], got 0.0"),
])
def test_cli_bad_config_is_one_line_and_writes_nothing(tmp_path, args, line):
    out = tmp_path / "out"
    p = _cli(*args, *([] if "key 'out_dir'" in line else [f"out_dir={out}"]))
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [line]
    assert not out.exists()  # not even Hydra's .hydra/ folder


def test_cli_bad_type_or_enum_fails_while_composing(tmp_path):
    for arg, key in (("task.mode=beam", "task.mode"), ("limit=some", "limit"), ("dtype=int8", "dtype"),
                     ("task.files.gld=x", "task.files.gld")):
        p = _cli("task=pubmedqa", "predictions=x.jsonl", f"out_dir={tmp_path / 'out'}", arg)
        assert p.returncode == 1 and f"full_key: {key}" in p.stderr, p.stderr
    assert not (tmp_path / "out").exists()


def test_cli_help_lists_the_task_group_only():
    p = _cli("--help")
    assert p.returncode == 0, p.stderr
    listing = p.stdout.split("== Configuration groups ==")[1].split("== Config ==")[0]
    assert [line.split(":")[0] for line in listing.splitlines() if ": " in line] == ["task"]
    assert "task: bc5cdr, bc5cdr_ner, ddi, generate, hoc, kd_dti, ncbi_disease, perplexity, pretrain, pubmedqa" in listing


@pytest.mark.parametrize("option", TASK_FILES)
def test_every_task_config_composes(option):
    name = "pretrain" if option == "perplexity" else option
    extra = {"pretrain": ["checkpoint=pyproject.toml"], "generate": ["checkpoint=pyproject.toml", "task.prompt=hi"]}
    s = build_config(compose([f"task={option}", "out_dir=/tmp/x", *extra.get(name, ["predictions=p.jsonl"])]))
    assert s.name == name and s.cfg.task.mode in s.task.modes and s.bench_dir.is_absolute()
    assert s.generation.max_new_tokens == s.cfg.task.max_new_tokens  # null: the task's budget


@pytest.mark.parametrize("overrides, key", [
    (["task=pubmedqa", "out_dir=/tmp/x"], "checkpoint"),
    (["task=pubmedqa", "out_dir=/tmp/x", "predictions=a", "checkpoint=pyproject.toml"], "predictions"),
    (["task=perplexity", "out_dir=/tmp/x", "predictions=a"], "predictions"),
    (["task=ddi", "out_dir=/tmp/x", "checkpoint=/nonexistent.ckpt"], "checkpoint"),
    (["task=pubmedqa", "out_dir=/tmp/x", "predictions=a", "limit=0"], "limit"),
    (["task=ddi", "out_dir=/tmp/x", "predictions=a", "task.mode=likelihood"], "task.mode"),
    (["task=pubmedqa", "out_dir=/tmp/x", "predictions=a", "generation.top_p=2"], "generation.top_p"),
    (["task=pubmedqa", "out_dir=/tmp/x", "predictions=a", "generation.top_k=0"], "generation.top_k"),
    (["task=pubmedqa", "out_dir=/tmp/x", "predictions=a", "generation.batch_size=0"], "generation.batch_size"),
    (["task=pubmedqa", "out_dir=/tmp/x", "predictions=a", "generation.max_new_tokens=0"], "generation.max_new_tokens"),
    (["task=pubmedqa", "out_dir=/tmp/x", "predictions=a", "task.max_new_tokens=0"], "task.max_new_tokens"),
    (["task=perplexity", "out_dir=/tmp/x", "checkpoint=pyproject.toml", "task.block_size=0"], "task.block_size"),
    (["task=perplexity", "out_dir=/tmp/x", "checkpoint=pyproject.toml", "task.batch_size=0"], "task.batch_size"),
    (["task=perplexity", "out_dir=/tmp/x", "checkpoint=pyproject.toml", "task.max_windows=0"], "task.max_windows"),
    (["task=pubmedqa", "out_dir=/tmp/x", "predictions=a", "seed=-1"], "seed"),
    (["task=pubmedqa", "out_dir=/tmp/x", "predictions=a", "device=tpu"], "device"),
    (["task=generate", "out_dir=/tmp/x", "checkpoint=pyproject.toml"], "task.prompt"),
    (["task=ddi", "out_dir=/tmp/x", "predictions=a", "task.files.gold=g.txt"], "task.files.gold"),
])
def test_bad_config_names_the_key(overrides, key):
    with pytest.raises(ConfigError) as e:
        build_config(compose(overrides))
    assert e.value.key == key


def test_bad_enum_fails_at_composition_naming_the_key():
    with pytest.raises(ConfigCompositionException) as e:
        compose(["task=pubmedqa", "out_dir=/tmp/x", "predictions=a", "task.mode=beam"])
    assert "task.mode" in str(e.value.__cause__)


def test_misspelled_key_in_a_plain_mapping_names_the_closest(tmp_path):
    raw = {"task": {"name": "pubmedqa", "mode": "likelihood"}, "out_dir": str(tmp_path), "predictions": "p",
           "generation": {"top_q": 0.9}}
    with pytest.raises(ConfigError, match=r"generation\.top_q': unknown key \(did you mean 'top_p'\?\)"):
        build_config(raw)


def test_missing_data_file_names_the_path(tmp_path):
    with pytest.raises(DataFileError, match=r"nowhere/pubmedqa/test_ground_truth.json: missing .* task.bench_dir="):
        run(compose(["task=pubmedqa", f"predictions={tmp_path}/p.jsonl", f"out_dir={tmp_path}",
                     f"task.bench_dir={tmp_path}/nowhere"]))


def test_bad_prediction_files(tmp_path):
    data = shared_path()
    base = ["task=ddi", f"out_dir={tmp_path}", f"task.bench_dir={data}"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "DDI-DrugBank.d700", "prediction": "x"}\n{not json\n')
    with pytest.raises(DataFileError, match=r"bad.jsonl:2: not valid JSON"):
        run(compose([*base, f"predictions={bad}"]))
    dup = _jsonl(tmp_path / "dup.jsonl", [{"id": "DDI-DrugBank.d700", "prediction": "x"}] * 2)
    with pytest.raises(DataFileError, match="duplicate id"):
        run(compose([*base, f"predictions={dup}"]))
    other = _jsonl(tmp_path / "other.jsonl", [{"id": "12377809", "prediction": "x"}])
    with pytest.raises(DataFileError, match="none of its 1 ids is a ddi test id"):
        run(compose([*base, f"predictions={other}"]))
    with pytest.raises(DataFileError, match="prediction file not found"):
        run(compose([*base, f"predictions={tmp_path}/absent.jsonl"]))


def test_missing_predictions_count_as_misses(tmp_path):
    data = shared_path()
    one = _jsonl(tmp_path / "one.jsonl", [{"id": "12377809", "prediction": f"{ANSWER_PREFIX} yes."}])
    r = run(compose(["task=pubmedqa", f"predictions={one}", f"out_dir={tmp_path}", f"task.bench_dir={data}"]))
    assert r["counts"]["missing"] == 499 and r["metrics"]["accuracy"] == pytest.approx(1 / 500)
    # limit=N is stratified by label (eval/sampling.py): 10 of 500 -> 6 yes, 3 no, 1 maybe, so
    # "yes" everywhere scores 0.6 (the file's first 10 items are all "yes": 1.0)
    gold = json.loads((data / "pubmedqa" / "test_ground_truth.json").read_text())
    all_yes = _jsonl(tmp_path / "yes.jsonl", [{"id": k, "prediction": f"{ANSWER_PREFIX} yes."} for k in gold])
    r = run(compose(["task=pubmedqa", f"predictions={all_yes}", f"out_dir={tmp_path}", f"task.bench_dir={data}",
                     "limit=10"]))
    assert r["metrics"]["accuracy"] == pytest.approx(0.6) and r["limit"] == 10 and r["counts"]["evaluated"] == 10
