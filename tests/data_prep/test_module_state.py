"""No module of data_prep keeps a run's objects: no `global` rebinding, and no module-level container
that functions write into, except the caches listed here, each keyed by a value (never by a
config object or its id()), so no run can receive another run's objects from them."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

ALLOWED = {
    # translation tables per choice of Unicode folds, keyed by those choices (booleans)
    ("data_prep/text/clean.py", "_TABLES"),
    # in an encoding worker process only: its pool's tokenizer, keyed by the sha256 of its JSON
    ("data_prep/pipeline/stage_tokenize.py", "_WORKER_TOKENIZERS"),
    # in a map worker process only: its pool's context (filters, eval index), keyed by its value
    ("data_prep/pipeline/stage_map.py", "_WORKER_CONTEXTS"),
}
MUTATORS = {"append", "extend", "update", "setdefault", "add", "insert", "pop", "popitem", "clear", "remove",
            "discard", "__setitem__"}


def module_state_writes(path: Path) -> list[tuple[int, str]]:
    """(line, name) of each `global` statement and each write into a module-level name from a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module_names = {t.id for node in tree.body if isinstance(node, ast.Assign | ast.AnnAssign)
                    for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)}
    out = []
    for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)):
        local = {a.arg for a in fn.args.args + fn.args.kwonlyargs}
        local |= {t.id for n in ast.walk(fn) if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
        shared = module_names - local
        for node in ast.walk(fn):
            if isinstance(node, ast.Global):
                out += [(node.lineno, name) for name in node.names]
            elif isinstance(node, ast.Assign | ast.AugAssign):
                for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    if isinstance(t, ast.Subscript | ast.Attribute):  # NAME[k] = v, NAME.x = v
                        while isinstance(t, ast.Subscript | ast.Attribute):
                            t = t.value
                        if isinstance(t, ast.Name) and t.id in shared:
                            out.append((node.lineno, t.id))
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MUTATORS
                  and isinstance(node.func.value, ast.Name) and node.func.value.id in shared):
                out.append((node.lineno, node.func.value.id))
    return out


def test_no_module_level_run_state():
    found = []
    for path in sorted((ROOT / "data_prep").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        found += [f"{rel}:{line} writes module-level {name}" for line, name in module_state_writes(path)
                  if (rel, name) not in ALLOWED]
    assert not found, "module-level state in data_prep (build per-run objects in the run instead):\n" + "\n".join(found)


def test_the_check_finds_what_it_looks_for(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("_CACHE = {}\nCTX = None\n\ndef f(cfg):\n    global CTX\n    CTX = cfg\n"
                   "    _CACHE[id(cfg)] = cfg\n    _CACHE.setdefault(1, 2)\n\ndef g(x):\n    y = {}\n    y[1] = x\n")
    assert sorted(name for _, name in module_state_writes(src)) == ["CTX", "_CACHE", "_CACHE"]
