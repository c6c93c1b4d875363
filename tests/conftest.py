"""Shared test fixtures: paths to the real data in ../shared (skipped with a reason when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BIOGPT_SHARED", ROOT.parent / "shared")).resolve()
SHARED_DATA = SHARED / "data"


def shared_path(*parts: str) -> Path:
    """Path under ../shared/data, or skip the test when the user's clone does not have it."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not available: {p} (it lives in ../shared/data beside the checkout)")
    return p


@pytest.fixture
def shared_data() -> Path:
    return shared_path()


# pytest-randomly shuffles the tests of these folders only (its seed is printed at the top of the
# run; `-p randomly --randomly-seed=N` repeats an order, `-p no:randomly` turns it off). The other
# folders keep file order until their tests are checked under random order too.
RANDOM_ORDER = (ROOT / "tests" / "data_prep", ROOT / "tests" / "demo_corpus")


def _random_order(item) -> bool:
    return any(Path(str(item.path)).resolve().is_relative_to(d) for d in RANDOM_ORDER)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_collection_modifyitems(config, items):
    collected = list(items)  # registered after pytest-randomly, so this runs before its shuffle
    yield
    if config.pluginmanager.hasplugin("randomly"):
        shuffled = iter([i for i in items if _random_order(i)])
        items[:] = [next(shuffled) if _random_order(i) else i for i in collected]
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:  # torch missing or broken: GPU tests cannot run either way
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)
