"""`python -m eval.data fetch` against a local HTTP server serving copies of the real files."""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from eval.data import DERIVED_SHA256, REMOTES, FetchConfig, FetchError, fetch, parse_args, sha256_of
from tests.conftest import ROOT, shared_path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Upstream's layout (pubmedqa/data/..., BioGPT/data/...) under a tmp root, on 127.0.0.1."""
    data = shared_path()
    root = tmp_path_factory.mktemp("upstream")
    for r in REMOTES:
        dest = root / r.base / r.upstream
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data / r.dest, dest)
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        _QuietHandler.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


def _cfg(url: str, out: Path, **kw) -> FetchConfig:
    return FetchConfig(out_dir=str(out), pubmedqa_url=f"{url}/pubmedqa", biogpt_url=f"{url}/biogpt",
                       retries=0, backoff_s=0.01, timeout_s=10, progress=False, **kw)


def _tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): sha256_of(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def test_fetch_lays_out_shared_data_and_resumes(server, tmp_path):
    _, url = server
    out = fetch(_cfg(url, tmp_path / "eval"))
    got = _tree(out)
    shared = shared_path()
    want = {rel: sha256_of(shared / rel) for rel in [r.dest for r in REMOTES] + list(DERIVED_SHA256)}
    assert got == want  # exactly the shared layout, byte for byte, and no marker or temp file beside it
    _QuietHandler.requests.clear()
    fetch(_cfg(url, out))
    assert _QuietHandler.requests == []  # a rerun finds everything verified and asks for nothing
    (out / "biogpt/DDI/raw/test.json").unlink()
    (out / "pubmedqa/pqal_test_set.json").unlink()
    fetch(_cfg(url, out))
    assert _QuietHandler.requests == ["/biogpt/DDI/raw/test.json"] and _tree(out) == want


def test_checksum_mismatch_names_url_and_file(server, tmp_path):
    root, url = server
    victim = root / "biogpt" / "HoC/raw/test.tsv"
    saved = victim.read_bytes()
    try:
        victim.write_bytes(saved[:-1] + b"X")
        with pytest.raises(FetchError, match=r"/biogpt/HoC/raw/test.tsv -> .*HoC/raw/test.tsv: md5 .* quarantined"):
            fetch(_cfg(url, tmp_path / "eval"))
    finally:
        victim.write_bytes(saved)
    assert (tmp_path / "eval/biogpt/DDI/raw/test.json").is_file()  # the other files still completed
    assert not (tmp_path / "eval/pubmedqa/pqal_test_set.json").exists()  # no splits from an incomplete set


def test_http_failure_is_one_line_naming_the_url(server, tmp_path):
    _, url = server
    r = subprocess.run([sys.executable, "-m", "eval.data", "fetch", f"out_dir={tmp_path / 'eval'}",
                        f"pubmedqa_url={url}/nowhere", f"biogpt_url={url}/biogpt", "retries=0", "progress=false"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("eval.data: error: ") and "/nowhere/ori_pqal.json" in lines[-1] and "HTTP 404" in lines[-1]


def test_arguments_are_checked():
    assert parse_args(["fetch", "out_dir=/x", "retries=2", "progress=false"]) == FetchConfig(
        out_dir="/x", retries=2, progress=False)
    with pytest.raises(FetchError, match="unknown argument 'outdir=/x'"):
        parse_args(["fetch", "outdir=/x"])
    with pytest.raises(FetchError, match="retries='many'"):
        parse_args(["fetch", "retries=many"])
    with pytest.raises(FetchError, match="unknown command 'get'"):
        parse_args(["get"])


def test_out_dir_defaults_to_the_env_var(monkeypatch):
    monkeypatch.delenv("BIOGPT_EVAL_DATA", raising=False)
    with pytest.raises(FetchError, match=r"out_dir is required.*BIOGPT_EVAL_DATA"):
        fetch(FetchConfig(progress=False))
