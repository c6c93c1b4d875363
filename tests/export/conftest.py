"""Small trained models (hybrid + local attention, and BioGPT's dense shape) in train/'s
checkpoint format, and their exports, built once per test session (see tiny.py)."""

from __future__ import annotations

import pytest

from tests.export.tiny import build_run


@pytest.fixture(scope="session")
def hybrid_run(tmp_path_factory) -> dict:
    return build_run(tmp_path_factory.mktemp("hybrid"), "hybrid")


@pytest.fixture(scope="session")
def dense_run(tmp_path_factory) -> dict:
    return build_run(tmp_path_factory.mktemp("dense"), "dense")


def _export(run: dict, **kw):
    from export.app import run as export
    from export.config import ExportConfig

    return export(ExportConfig(checkpoint=str(run["checkpoint"]), out_dir=str(run["root"] / "export"), **kw))


@pytest.fixture(scope="session")
def hybrid_export(hybrid_run):
    return _export(hybrid_run, model_name="tiny-hybrid")


@pytest.fixture(scope="session")
def dense_export(dense_run):
    return _export(dense_run)
