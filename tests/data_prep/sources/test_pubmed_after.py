"""`source.after` (PubMed sources): only files numbered above a bound, and `after=corpus` with append=true:
"everything after what the corpus already has", against a local NCBI-style server (no network)."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pytest

from common.config import ConfigError
from data_prep.config import build_config
from data_prep.sources import resolve_inputs
from tests.data_prep.conftest import FAST_PREP, abstract_text, citation, run_prep
from tests.data_prep.sources.test_download import FakeServer, running_server

HTTP = {"connections": 2, "retries": 2, "backoff_s": 0.001, "backoff_max_s": 0.005, "timeout_s": 5, "progress": False}
UPDATES = "/pubmed/updatefiles/"


def update_file(n: int) -> bytes:
    """Update file n: three citations of its own, gzipped like NCBI's."""
    cites = "".join(citation(8_000_000 + 10 * n + k, f"Update {n} study {k} of kinase inhibitors",
                             abstract_text(10 * n + k)) for k in range(3))
    xml = f'<?xml version="1.0" encoding="utf-8"?>\n<PubmedArticleSet>\n{cites}</PubmedArticleSet>\n'
    return gzip.compress(xml.encode(), mtime=0)


def serve_updates(server: FakeServer, numbers) -> dict[int, bytes]:
    bodies, links = {}, []
    for n in numbers:
        name = f"pubmed26n{n:04d}.xml.gz"
        bodies[n] = update_file(n)
        server.add(UPDATES + name, bodies[n])
        server.add(UPDATES + name + ".md5", f"MD5({name})= {hashlib.md5(bodies[n]).hexdigest()}\n".encode())
        links += [f'<a href="{name}">{name}</a>', f'<a href="{name}.md5">{name}.md5</a>']
    server.add(UPDATES, ("<html><body><pre>" + "\n".join(links) + "</pre></body></html>").encode(),
               content_type="text/html")
    return bodies


@pytest.fixture
def server():
    with running_server() as s:
        yield s


def source(server: FakeServer, **kw) -> dict:
    return {"name": "pubmed_updates", "base_url": server.url + UPDATES.lstrip("/"), **HTTP, **kw}


def test_after_selects_only_newer_files_and_downloads_nothing_else(server, tmp_path):
    serve_updates(server, range(1335, 1340))
    inputs = resolve_inputs(source(server, after=1336), tmp_path)
    assert [f.order for f in inputs] == [1337, 1338, 1339]
    assert server.gets(UPDATES + "pubmed26n1336.xml.gz") == 0 and server.gets(UPDATES + "pubmed26n1337.xml.gz") == 1
    assert [f.order for f in resolve_inputs(source(server, after="1337", files="1335-1338"), tmp_path)] == [1338]
    assert resolve_inputs(source(server, after=1339), tmp_path) == []  # nothing newer yet: not an error


@pytest.mark.parametrize("value", ["newest", -1, "13.5", True])
def test_a_bad_after_names_the_key(value, tmp_path):
    with pytest.raises(ConfigError, match="source.after"):
        build_config({"out_dir": str(tmp_path), "source": {"name": "pubmed_updates", "after": value}})


def test_after_corpus_needs_append(tmp_path):
    with pytest.raises(ConfigError, match="source.after.*append=true"):
        build_config({"out_dir": str(tmp_path), "source": {"name": "pubmed_updates", "after": "corpus"}})
    cfg = build_config({"out_dir": str(tmp_path), "append": True,
                        "source": {"name": "pubmed_updates", "after": "corpus"}})
    assert cfg.source.after == "corpus"


def test_append_after_corpus_fetches_only_what_the_corpus_lacks(server, tmp_path, capsys):
    bodies = serve_updates(server, range(1335, 1339))
    local = tmp_path / "local"
    local.mkdir()
    for n in (1335, 1336):  # generation 1: the first two update files, from disk
        (local / f"pubmed26n{n:04d}.xml.gz").write_bytes(bodies[n])
    out = tmp_path / "out"
    run_prep([f"source.path={local}", f"out_dir={out}", *FAST_PREP])
    src = [f"source.{k}={v}" for k, v in HTTP.items()]
    args = ["source=pubmed_updates", f"source.base_url={server.url}pubmed/updatefiles/", "source.after=corpus",
            f"out_dir={out}", "append=true", *src, *FAST_PREP]
    m = run_prep(args)
    assert [Path(i["path"]).name for i in m["generations"][1]["inputs"]] == ["pubmed26n1337.xml.gz",
                                                                            "pubmed26n1338.xml.gz"]
    assert m["generations"][1]["source"]["name"] == "pubmed_updates"
    assert server.gets(UPDATES + "pubmed26n1335.xml.gz") == 0 and server.gets(UPDATES + "pubmed26n1336.xml.gz") == 0
    assert m["generations"][1]["counts"]["kept"] == 6
    again = run_prep(args)  # nothing above n1338 yet
    assert again == m and "the source lists no input file" in capsys.readouterr().out
