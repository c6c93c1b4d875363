"""What every task module implements (`Task`), what the scored benchmarks share (`TestSet`,
`Score`), and the errors and file readers they use.

A task module (tasks/<name>.py) defines one `Task` subclass and `TASK = ThatClass()`; the package
registers it by `TASK.name`. A `Task` is stateless (its files, formats, labels and readers); test
data is loaded into a `TestSet`, which `Task.test_set(paths)` returns and eval scores through.
"""

from __future__ import annotations

import ast
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DATA_HINT = "set task.bench_dir=<folder> (or BIOGPT_EVAL_DATA) to the folder holding pubmedqa/ and biogpt/"


class Choice(str, Enum):
    """A config value from a fixed set; equal to its string and printed as it (Hydra checks the set)."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class Mode(Choice):
    score = "score"  # pretrain: perplexity and bits per byte on held-out token shards
    likelihood = "likelihood"  # the most likely of the task's labels after its answer prefix
    generate = "generate"  # decode, then read the answer from the text as BioGPT's scripts do


class PromptFormat(Choice):
    train = "train"  # the source exactly as `python -m train` fine-tunes on it (Task.source)
    biogpt = "biogpt"  # BioGPT's lower-cased source after an EOS (Task.biogpt_source)


class Split(Choice):
    train = "train"
    val = "val"


class Kind(Enum):
    LANGUAGE_MODEL = "language_model"  # next-token loss on data_prep's token shards; eval: perplexity
    BENCHMARK = "benchmark"  # source -> target examples; eval: predictions scored against gold
    GENERATION = "generation"  # free prompts -> continuations (eval only, nothing to score)


class TaskError(Exception):
    """A task's input is wrong; its message is one line naming the file and what to do."""


class DataFileError(TaskError):
    def __init__(self, path: object, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


# ----------------------------------------------------------------------------- reading task files
def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DataFileError(path, f"missing {what}; {DATA_HINT}")
    return path


def load_json(path: Path, what: str) -> Any:
    require_file(path, what)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataFileError(path, f"not valid JSON ({e}); restore the original {what}") from e


def item_field(item: dict, key: str, path: Path, doc_id: str) -> Any:
    if not isinstance(item, dict) or key not in item:
        keys = ", ".join(item) if isinstance(item, dict) else type(item).__name__
        raise DataFileError(path, f"item {doc_id!r} has no '{key}' field (keys: {keys})")
    return item[key]


def listish(value: Any, key: str, path: Path, doc_id: str) -> list:
    """BioGPT's raw files may store relation lists as Python reprs ("[{'chemical': ...}]")."""
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)  # literals only: never executes code
        except (ValueError, SyntaxError) as e:
            raise DataFileError(path, f"item {doc_id!r} field '{key}' is not a list literal ({e})") from None
    if isinstance(value, dict):
        return [value]
    if not isinstance(value, list):
        raise DataFileError(path, f"item {doc_id!r} field '{key}' must be a list")
    return value


# ----------------------------------------------------------------------------- the task interface
@dataclass(frozen=True)
class Example:
    """One fine-tuning pair in the task's training format; the loss covers `target` only."""

    id: str
    source: str
    target: str
    label: str = ""


class Task:
    """One task as train/ and eval/ see it. Subclasses set the class attributes and override the
    methods their kind needs (BENCHMARK: read, source, example, biogpt_source, test_set)."""

    name: str = ""
    kind: Kind = Kind.BENCHMARK
    modes: tuple[Mode, ...] = (Mode.generate,)  # evaluation modes (conf/task/<name>.yaml picks one)
    layout: Mapping[str, str] = {}  # file role -> path under the benchmark folder (task.bench_dir)
    labels: tuple[str, ...] = ()  # the closed answer set, for tasks that have one
    answer_prefix: str | None = None  # the target's words before the label (likelihood mode)

    @property
    def trainable(self) -> bool:
        return self.kind is not Kind.GENERATION

    def paths(self, bench_dir: Path, overrides: Mapping[str, str] | None = None) -> dict[str, Path]:
        """role -> file: the layout under `bench_dir`, with `overrides` (absolute, or relative to bench_dir)."""
        chosen = {**self.layout, **(overrides or {})}
        return {role: Path(bench_dir) / Path(p).expanduser() for role, p in chosen.items()}

    def read(self, path: Path) -> dict[str, dict]:
        """The items of one file of the layout, keyed by id (JSON objects keyed by document id)."""
        raw = load_json(path, f"{self.name} file")
        if not isinstance(raw, dict) or not raw:
            raise DataFileError(path, "expected a non-empty JSON object keyed by document id")
        return {str(k): v for k, v in raw.items()}

    def source(self, key: str, item: dict, path: Path) -> str:
        """What the model reads, in the training format (no label needed)."""
        raise TaskError(f"task {self.name} has no source text; choose a task that has (tasks.names())")

    def example(self, key: str, item: dict, path: Path) -> Example:
        """The fine-tuning pair of one item."""
        raise TaskError(f"task {self.name} has no fine-tuning examples; choose a task that has (tasks.names())")

    def examples(self, path: Path) -> list[Example]:
        return [self.example(key, item, path) for key, item in self.read(path).items()]

    def biogpt_source(self, key: str, item: dict) -> str:
        """BioGPT's rebuild_data.py source (lower-cased), for converted BioGPT checkpoints."""
        return self.source(key, item, Path(f"<{self.name}>"))

    def target(self, label: str) -> str:
        """The target sentence of a label (tasks with `labels`)."""
        raise TaskError(f"task {self.name} has no label targets; choose a task that has (tasks.names())")

    def test_set(self, paths: Mapping[str, Path]) -> TestSet:
        raise TaskError(f"task {self.name} has no scored test set; choose a task that has (tasks.names())")


# ----------------------------------------------------------------------------- scored test sets
@dataclass
class Score:
    task: str
    metrics: dict[str, float]  # the headline numbers (results.json top level)
    counts: dict[str, int]  # evaluated, missing, failed (unparsable), unknown_ids
    items: list[dict] = field(default_factory=list)  # per id: gold, extracted prediction
    extra: dict = field(default_factory=dict)  # task-specific (e.g. the confusion matrix)


@dataclass(frozen=True)
class Aligned:
    """Predictions lined up with the evaluated gold ids."""

    ids: list[str]
    texts: list[str | None]  # None where the id has no prediction
    missing: int
    unknown: int


def align(task: str, predictions: dict[str, str], ids: list[str], all_ids: set[str],
          source: str = "predictions") -> Aligned:
    """Match prediction ids to gold ids; refuse a file that matches none (wrong task or id scheme)."""
    unknown = [k for k in predictions if k not in all_ids]
    if predictions and len(unknown) == len(predictions):
        example = ", ".join(sorted(all_ids)[:3])
        raise DataFileError(source, f"none of its {len(predictions)} ids is a {task} test id "
                                    f"(e.g. {example}); is it the prediction file for another task?")
    if unknown:
        log.warning("%s: %d ids are not %s test ids and are ignored (e.g. %s)", source, len(unknown),
                    task, ", ".join(unknown[:3]))
    texts = [predictions.get(i) for i in ids]
    return Aligned(ids, texts, sum(t is None for t in texts), len(unknown))


def text_prediction(record: dict) -> str:
    """The generated text of a prediction-file line `{"id": ..., "prediction": "..."}`."""
    if "prediction" not in record:
        raise ValueError('each line needs "id" and "prediction" keys')
    if not isinstance(record["prediction"], str):
        raise ValueError('"prediction" must be a string (the generated text)')
    return record["prediction"]


class TestSet:
    """A benchmark's test items and gold, loaded from the files of its layout."""

    __test__ = False  # not a pytest test class

    def __init__(self, task: Task, items: dict[str, dict], path: Path):
        self.task = task
        self.items = items
        self.path = path  # the file the items came from (error messages)

    @property
    def name(self) -> str:
        return self.task.name

    def ids(self) -> list[str]:
        """The evaluated ids, in file order."""
        return list(self.items)

    def pmids(self) -> set[str]:
        """Test-set PMIDs for the contamination guard (empty when the files carry none)."""
        return set()

    def item(self, key: str) -> dict:
        return self.items[key]

    def source(self, key: str, fmt: PromptFormat) -> tuple[str, bool]:
        """(source text, whether an EOS goes before it) in prompt format `fmt`."""
        item = self.item(key)
        if fmt == PromptFormat.train:
            return self.task.source(key, item, self.path), False
        return self.task.biogpt_source(key, item).rstrip(), True

    def render(self, key: str) -> str:
        """The gold of `key` in BioGPT's target format (reads back through the task's extraction)."""
        raise TaskError(f"task {self.name}: its test set cannot render gold in the target format")

    def read_prediction(self, record: dict) -> Any:
        """What one prediction-file line predicts: its generated text by default (a task may also
        accept structured predictions); a ValueError says what is wrong with the line."""
        return text_prediction(record)

    def score(self, predictions: dict[str, str], ids: list[str] | None = None,
              source: str = "predictions") -> Score:
        raise TaskError(f"task {self.name}: its test set has no scoring")
