"""`python -m serve`: starts on 127.0.0.1, answers the openai client, stops on SIGINT; bad
configs fail in one line (exit 2) before anything starts."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.serve.conftest import client

ROOT = Path(__file__).resolve().parents[2]


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


def test_serve_command_serves_and_stops_on_sigint(serve_run, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "serve", f"checkpoint={serve_run['checkpoint']}", "port=0",
                             "model_name=biogpt-test", "log_level=warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env())
    try:
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout=120)
        assert line and line[0].startswith("serving 'biogpt-test' at http://127.0.0.1:"), (line, proc.poll())
        assert "API key not required" in line[0]
        url = re.search(r"(http://127\.0\.0\.1:\d+/v1)", line[0]).group(1)
        handle = type("H", (), {"url": url})()
        r = client(handle).completions.create(model="biogpt-test", prompt="Metformin", max_tokens=4, temperature=0)
        assert r.choices and r.usage.completion_tokens >= 1
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, proc.stderr.read()[-2000:]
    assert list(tmp_path.iterdir()) == []  # a server writes nothing (no Hydra outputs, no logs)


@pytest.mark.parametrize("args, message", [
    (["port=70000"], "config key 'port': must be in [0, 65535], got 70000"),
    (["max_batch_size=2", "max_n=4"], "config key 'max_n': 4 is larger than max_batch_size=2"),
    (["device=tpu"], "config key 'device': 'tpu'; use auto, cpu, cuda or cuda:N"),
    (["hots=0.0.0.0"], "config key 'hots': unknown key (did you mean 'host'?)"),
    (["checkpoint=/nonexistent"], "config key 'checkpoint': /nonexistent does not exist"),
])
def test_bad_config_fails_in_one_line(serve_run, tmp_path, args, message):
    r = subprocess.run([sys.executable, "-m", "serve", f"checkpoint={serve_run['checkpoint']}", *args],
                       capture_output=True, text=True, cwd=tmp_path, env=env(), timeout=300)
    assert r.returncode == 2 and r.stderr.startswith(f"error: {message}") and r.stderr.count("\n") == 1, r.stderr


def test_schema_composes_with_its_defaults(serve_run):
    from hydra import compose, initialize_config_dir

    from serve.config import register, validate

    register()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="serve", overrides=[f"checkpoint={serve_run['checkpoint']}", "debug.step_delay_s=0.5"])
    c = validate(cfg)
    assert (c.host, c.port, c.max_batch_size, c.max_queue, c.api_key_env) == ("127.0.0.1", 8000, 8, 64, "BIOGPT_API_KEY")
    assert c.debug.step_delay_s == 0.5 and c.dtype.value == "auto"
