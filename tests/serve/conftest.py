"""A small trained hybrid model in train/'s checkpoint format (tests/export/tiny.py), and servers
on 127.0.0.1 started in-process on a free port and always stopped."""

from __future__ import annotations

import contextlib

import pytest

from tests.export.tiny import build_run


@pytest.fixture(scope="session")
def serve_run(tmp_path_factory) -> dict:
    # A few optimizer steps only: the model is trained but still answers differently per prompt.
    return build_run(tmp_path_factory.mktemp("serve"), "hybrid", steps=4)


@contextlib.contextmanager
def running(checkpoint, **overrides):
    """A server from serve.server.start on 127.0.0.1:<free port>, stopped on exit."""
    from serve.config import DebugConfig, ServeConfig
    from serve.server import start

    debug = DebugConfig(**overrides.pop("debug", {}))
    cfg = ServeConfig(checkpoint=str(checkpoint), host="127.0.0.1", port=0, debug=debug,
                      **{"log_level": "warning", **overrides})
    handle = start(cfg)
    try:
        yield handle
    finally:
        handle.stop()


def client(handle, api_key: str = "unused", timeout: float = 60.0):
    import openai

    return openai.OpenAI(base_url=handle.url, api_key=api_key, max_retries=0, timeout=timeout)
