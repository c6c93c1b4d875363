"""The task registry and the interface every task module implements; tasks/ stays pure Python; the
PubMedQA wording is written in one place."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import tasks
from tasks.base import Example, Kind, Mode, Task, TestSet
from tasks.config import TaskConfig, TaskFiles, check
from tasks.pubmedqa import ANSWER_PREFIX, LABELS
from tests.conftest import ROOT

BENCHMARKS = ("bc5cdr", "ddi", "hoc", "kd_dti", "pubmedqa")


def test_registry_holds_every_task_module():
    assert tasks.names() == ("bc5cdr", "bc5cdr_ner", "ddi", "generate", "hoc", "kd_dti", "ncbi_disease", "pretrain",
                            "pubmedqa")
    assert all(tasks.get(n).name == n for n in tasks.names())
    with pytest.raises(KeyError, match="unknown task 'squad'; choose one of bc5cdr, bc5cdr_ner, ddi"):
        tasks.get("squad")
    modules = {p.stem for p in (ROOT / "tasks").glob("*.py")} - {"__init__"}
    registered = {tasks.get(n).__class__.__module__.rsplit(".", 1)[1] for n in tasks.names()}
    helpers = modules - registered
    assert helpers == {"base", "config", "interaction", "metrics", "ner", "text"}, "a module with TASK was not registered"


def test_every_task_has_a_yaml_and_every_yaml_a_task():
    yamls = {p.stem for p in (ROOT / "conf" / "task").glob("*.yaml")} - {"perplexity"}  # perplexity: pretrain's eval alias
    assert yamls == set(tasks.names())
    for name in yamls:
        assert re.search(rf"^name: {name}$", (ROOT / "conf" / "task" / f"{name}.yaml").read_text(), re.M), name


@pytest.mark.parametrize("name", tasks.names())
def test_task_interface(name):
    task = tasks.get(name)
    assert isinstance(task, Task) and task.modes and all(isinstance(m, Mode) for m in task.modes)
    if task.kind is Kind.BENCHMARK:
        assert {"train", "val", "test"} <= set(task.layout), "a benchmark can be fine-tuned and scored"
        assert set(task.layout) <= set(TaskFiles.__dataclass_fields__), "a file role the config cannot override"
        assert Mode.generate in task.modes and Mode.score not in task.modes
    else:
        assert not task.layout
    if Mode.likelihood in task.modes:  # the label sentences a likelihood run compares
        assert task.labels and task.answer_prefix
        assert all(task.target(label).startswith(task.answer_prefix) for label in task.labels)
    assert task.trainable == (task.kind is not Kind.GENERATION)


def test_files_are_the_layout_under_the_benchmark_folder_with_overrides(tmp_path):
    task = tasks.get("pubmedqa")
    paths = task.paths(tmp_path, {"gold": "mine/gold.json", "test": "/abs/test.json"})
    assert paths["train"] == tmp_path / "pubmedqa" / "pqal_fold0_train_set.json"
    assert paths["gold"] == tmp_path / "mine" / "gold.json" and paths["test"] == Path("/abs/test.json")


def test_examples_and_sources(tmp_path):
    qa = tasks.get("pubmedqa")
    item = {"QUESTION": " Is it? ", "CONTEXTS": ["One. ", " Two."], "final_decision": "Maybe"}
    assert qa.example("7", item, tmp_path) == Example("7", "question: Is it? context: One. Two.",
                                                      f"{ANSWER_PREFIX} maybe.", "maybe")
    assert qa.biogpt_source("7", item) == "question: is it? context: one. two. "
    ddi = tasks.get("ddi")
    doc = {"abstract": "A with B.", "triples": "[{'drug': 'A', 'target': 'B', 'interaction': 'effect'}]"}
    assert ddi.example("d1", doc, tmp_path).target == "the interaction between A and B is effect."
    assert ddi.example("d2", {**doc, "triples": []}, tmp_path).target == "there is no relation."
    hoc = tasks.get("hoc")
    (tmp_path / "t.tsv").write_text("Cells divide\tsustaining proliferative signaling\n\nOther .\tempty\n")
    items = hoc.read(tmp_path / "t.tsv")
    assert list(items) == ["0", "1"]  # positions of the non-blank lines
    assert hoc.example("0", items["0"], tmp_path).target == "the type of this document is sustaining proliferative signaling."
    assert hoc.biogpt_source("0", items["0"]) == "Cells divide."


def test_test_set_source_formats(tmp_path):
    (tmp_path / "q.json").write_text('{"1": {"QUESTION": "Q?", "CONTEXTS": ["C."]}}')
    (tmp_path / "g.json").write_text('{"1": "yes"}')
    bench = tasks.get("pubmedqa").test_set({"test": tmp_path / "q.json", "gold": tmp_path / "g.json"})
    assert isinstance(bench, TestSet) and bench.ids() == ["1"] and bench.pmids() == {"1"}
    assert bench.source("1", "train") == ("question: Q? context: C.", False)  # no label needed
    assert bench.source("1", "biogpt") == ("question: q? context: c.", True)  # after an EOS


def test_task_config_check_names_the_key():
    from common.config import ConfigError

    assert check(TaskConfig(name="pubmedqa", mode=Mode.likelihood)).name == "pubmedqa"
    cases = [(TaskConfig(name="squad"), "task.name"), (TaskConfig(name="ddi", mode=Mode.likelihood), "task.mode"),
             (TaskConfig(name="ddi", files=TaskFiles(gold="x")), "task.files.gold"),
             (TaskConfig(name="hoc", seq_len=1), "task.seq_len"), (TaskConfig(name="hoc", max_new_tokens=0), "task.max_new_tokens"),
             (TaskConfig(name="pretrain", mode=Mode.score, block_size=0), "task.block_size"), (TaskConfig(), "task")]
    for cfg, key in cases:
        with pytest.raises(ConfigError) as e:
            check(cfg)
        assert e.value.key == key


def test_tasks_import_no_framework():
    code = ("import sys, tasks, tasks.config; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'lightning', 'numpy', 'omegaconf', 'hydra', 'model', 'train', 'eval', 'data_prep')); "
            "print(bad); sys.exit(bool(bad))")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


def test_pubmedqa_wording_and_labels_are_written_once():
    """The answer sentence and the label set live in tasks/pubmedqa.py; everything else imports them."""
    sentence = re.compile(re.escape(ANSWER_PREFIX))
    labels = re.compile(r"""["']yes["'],\s*["']no["'],\s*["']maybe["']""")
    files = [p for pattern in ("*.py", "*.yaml", "*.sh", "*.sbatch", "Makefile") for p in ROOT.rglob(pattern)
             if not {".venv", ".git", "runs", "outputs", "multirun"} & set(p.relative_to(ROOT).parts)]
    has_sentence = {str(p.relative_to(ROOT)) for p in files if sentence.search(p.read_text(encoding="utf-8"))}
    assert has_sentence == {"tasks/pubmedqa.py"}
    code = [p for p in files if p.relative_to(ROOT).parts[0] != "tests"]
    has_labels = {str(p.relative_to(ROOT)) for p in code if labels.search(p.read_text(encoding="utf-8"))}
    assert has_labels == {"tasks/pubmedqa.py"}
    assert LABELS == ("yes", "no", "maybe")
