"""The import rules of docs/architecture.md, checked on every import statement in the code
(top-level and inside functions), so a dependency between parts cannot creep in unnoticed."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = {"common", "data_prep", "demo_corpus", "model", "tasks", "train", "eval", "export", "serve"}
STDLIB = set(sys.stdlib_module_names)

# part -> project parts (or third-party roots) it must never import. `common` is split by module:
# common.checkpoint loads models (torch + model), the rest is stdlib-only.
FORBIDDEN = {
    "model": PROJECT - {"model"},
    "data_prep": {"model", "train", "eval", "tasks", "export", "serve", "common.checkpoint", "torch", "lightning"},
    "tasks": PROJECT - {"tasks", "common"} | {"common.checkpoint", "torch", "lightning", "numpy"},
    "eval": {"train", "lightning", "pytorch_lightning"},
    "train": {"eval", "serve"},
    "export": {"train", "eval", "lightning"},
    "serve": {"train", "eval", "lightning"},
    "common": {"data_prep", "train", "eval", "tasks", "export", "serve", "demo_corpus", "lightning"},
}


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) of every absolute import in a file; relative imports stay inside the part."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out += [(node.lineno, node.module)]
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return out


def violates(module: str, banned: set[str]) -> bool:
    return any(module == b or module.startswith(b + ".") for b in banned)


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_import_rules(part: str):
    folder = ROOT / part
    if not folder.is_dir():
        pytest.skip(f"{part}/ does not exist")
    bad = [f"{p.relative_to(ROOT)}:{line} imports {mod}"
           for p in sorted(folder.rglob("*.py")) for line, mod in imports_of(p) if violates(mod, FORBIDDEN[part])]
    assert not bad, f"{part}/ breaks the import rules of docs/architecture.md:\n" + "\n".join(bad)


def test_model_imports_only_torch_and_stdlib():
    bad = []
    for p in sorted((ROOT / "model").rglob("*.py")):
        for line, mod in imports_of(p):
            root = mod.split(".")[0]
            # flash_attn: an optional CUDA kernel for torch, imported only when that backend is chosen
            if root not in STDLIB and root not in {"torch", "model", "flash_attn"}:
                bad.append(f"{p.relative_to(ROOT)}:{line} imports {mod}")
    assert not bad, "model/ may import only torch and the standard library:\n" + "\n".join(bad)


def test_tasks_are_pure_python():
    bad = []
    for p in sorted((ROOT / "tasks").rglob("*.py")):
        for line, mod in imports_of(p):
            root = mod.split(".")[0]
            if root not in STDLIB and root not in {"tasks", "common"}:
                bad.append(f"{p.relative_to(ROOT)}:{line} imports {mod}")
    assert not bad, "tasks/ is pure Python (stdlib + common):\n" + "\n".join(bad)
