"""Tasks as train/ and eval/ both see them, in pure Python: the pretraining task, the BioGPT
benchmarks (PubMedQA, BC5CDR, DDI, KD-DTI, HoC) and free generation.

    import tasks
    task = tasks.get("pubmedqa")   # tasks.base.Task: files, examples, labels, extraction, scoring
    tasks.names()                  # ('bc5cdr', 'bc5cdr_ner', 'ddi', 'generate', 'hoc', 'kd_dti', 'ncbi_disease', ...)

Every module of this package that defines `TASK` (a `tasks.base.Task`) is registered under
`TASK.name`: a new benchmark is one module here plus conf/task/<name>.yaml (docs/eval.md).
Imports only the standard library and common/.
"""

from __future__ import annotations

import importlib
import pkgutil

from tasks.base import Task


def get(name: str) -> Task:
    if name not in _TASKS:
        raise KeyError(f"unknown task {name!r}; choose one of {', '.join(names())}")
    return _TASKS[name]


def names() -> tuple[str, ...]:
    return tuple(sorted(_TASKS))


def _discover() -> dict[str, Task]:
    found: dict[str, Task] = {}
    for info in pkgutil.iter_modules(__path__):
        task = getattr(importlib.import_module(f"{__name__}.{info.name}"), "TASK", None)
        if isinstance(task, Task):
            if task.name in found:
                raise RuntimeError(f"tasks/{info.name}.py: task name {task.name!r} is already taken")
            found[task.name] = task
    return found


_TASKS: dict[str, Task] = {}
_TASKS.update(_discover())  # static: built once from the modules of this package
