"""Every class of bad input, mixed into a corpus of known good documents: each bad file is
quarantined with a one-line reason that names the fault and quotes nothing of the file, the run
goes on, and exactly the good documents are kept (none lost, none duplicated)."""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from pathlib import Path
from xml.sax.saxutils import escape

import pyarrow.parquet as pq
import pytest

from tests.chaos.conftest import EXTRA_PMIDS, FAST, GOOD_JATS_PMCIDS, write_good_corpus
from tests.data_prep.conftest import (
    TRUNCATED_PMIDS,
    abstract_text,
    citation,
    pubmed_file,
    run_prep,
    write_hostile,
    write_truncated_gzip,
)
from tests.data_prep.sources.test_download import running_server
from tests.data_prep.sources.test_sources import serve_pmc

pytestmark = pytest.mark.chaos

PASSWD = Path("/etc/passwd")
RECORD = ('<PubmedArticle><MedlineCitation Status="MEDLINE"><PMID Version="1">{pmid}</PMID><Article>'
          "<ArticleTitle>Bad file record {pmid}</ArticleTitle></Article></MedlineCitation></PubmedArticle>")
UTF16_PMIDS = (9_800_001, 9_800_002, 9_800_003)
BAD_FILE_PMIDS = (9_900_001, 9_900_002)  # good records inside bad files: discarded with their file


def _pubmed(body: str) -> bytes:
    records = "".join(RECORD.format(pmid=p) for p in BAD_FILE_PMIDS)
    return f'<?xml version="1.0"?>\n<PubmedArticleSet>{records}{body}</PubmedArticleSet>\n'.encode()


def _bad_crc(path: Path) -> None:
    data = bytearray(gzip.compress(_pubmed(""), mtime=0))
    data[-8] ^= 0xFF
    path.write_bytes(bytes(data))


# (file name, how to make it, a fragment of the reason the manifest must give)
BAD: list[tuple[str, object, str]] = [
    ("malformed.xml", _pubmed("<PubmedArticle><MedlineCitation><PMID>7</PMID></Medline>"), "malformed XML at line"),
    ("unterminated.xml", _pubmed("<PubmedArticle><MedlineCitation>")[:-20], "malformed XML"),
    ("truncated.xml.gz", write_truncated_gzip, "truncated or corrupt gzip"),
    ("bad_crc.xml.gz", _bad_crc, "truncated or corrupt gzip"),
    ("empty.xml", b"", "empty file"),
    ("empty_gzip.xml.gz", gzip.compress(b"", mtime=0), "file is empty"),
    ("garbage.xml", random.Random(0).randbytes(4096), "not XML (it starts with binary data"),
    ("garbage_gzip.xml.gz", b"\x1f\x8b\x08\x00" + random.Random(1).randbytes(4096), "truncated or corrupt gzip"),
    ("medline_text.xml", b"PMID- 12345\nTI  - a MEDLINE text record\n", "not XML (it starts with text"),
    ("html.xml", b"<html><body><p>Not an article</p></body></html>", "neither PubMed nor JATS"),
    ("billion_laughs.xml", write_hostile, "declares entities"),
    ("xxe.xml", b'<?xml version="1.0"?>\n<!DOCTYPE article [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
                b"<article><front><article-meta><title-group><article-title>&x;</article-title></title-group>"
                b"</article-meta></front></article>", "declares entities"),
    ("parameter_xxe.xml", b'<?xml version="1.0"?>\n<!DOCTYPE article [<!ENTITY % r SYSTEM "http://127.0.0.1:9/e.dtd"> '
                          b"%r;]>\n<article/>", "declares entities"),
    ("comment_bypass.xml", b'<?xml version="1.0"?>\n<!DOCTYPE PubmedArticleSet [ <!-- ]> <PubmedArticleSet> -->\n'
                           b' <!ENTITY a "aaaa"> <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">\n]>\n' + _pubmed("<x>&b;</x>")[22:],
     "declares entities"),
    ("element_bomb.xml.gz", gzip.compress(_pubmed("<PubmedArticle><MedlineCitation>" + "<x/>" * 4_000_000
                                                  + "</MedlineCitation></PubmedArticle>"), 9), "more than 500,000"),
    ("deep.xml", _pubmed("<PubmedArticle>" + "<a>" * 300 + "</a>" * 300 + "</PubmedArticle>"), "Excessive depth"),
    ("huge_text.xml.gz", gzip.compress(_pubmed("<PubmedArticle><MedlineCitation><PMID>8</PMID><Article><ArticleTitle>"
                                               + "x" * 11_000_000 + "</ArticleTitle></Article></MedlineCitation>"
                                               "</PubmedArticle>"), 9), "Text node too long"),
    ("bad_utf8.xml", _pubmed("<PubmedArticle><MedlineCitation><PMID>9</PMID><Article><ArticleTitle>")
     .replace(b"<PMID>9</PMID><Article><ArticleTitle>", b"<PMID>9</PMID><Article><ArticleTitle>caf\xe9 \xff</ArticleTitle>"
              b"</Article></MedlineCitation></PubmedArticle>"), "malformed XML"),
]
LINKS = [("passwd.xml", "outside source.path"), ("linked_folder", "outside source.path")]


def _make(folder: Path, name: str, how) -> None:
    path = folder / name
    if callable(how):
        how(path)
    else:
        path.write_bytes(how)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> tuple[Path, dict, int, dict]:
    """(out_dir, manifest, good documents in the input, manifest of the good files alone)."""
    root = tmp_path_factory.mktemp("bad_inputs")
    good_in = root / "good"
    n_good = write_good_corpus(good_in)
    text = "".join(citation(p, f"Étude {p} encodée en UTF-16", abstract_text(p, 80)) for p in UTF16_PMIDS)
    utf16 = ('<?xml version="1.0" encoding="UTF-16"?>\n<PubmedArticleSet>' + text + "</PubmedArticleSet>\n")
    (good_in / "utf16_with_bom.xml").write_bytes(b"\xff\xfe" + utf16.encode("utf-16-le"))
    n_good += len(UTF16_PMIDS)
    good = run_prep([f"source.path={good_in}", f"out_dir={root / 'good_out'}", *FAST])

    d = root / "in"
    write_good_corpus(d)
    (d / "utf16_with_bom.xml").write_bytes((good_in / "utf16_with_bom.xml").read_bytes())
    bad = d / "bad"
    bad.mkdir()
    for name, how, _ in BAD:
        _make(bad, name, how)
    outside = root / "outside"
    outside.mkdir()
    pubmed_file(outside / "elsewhere.xml", [citation(9_950_001, "Outside the input", abstract_text(1, 80))])
    (bad / "passwd.xml").symlink_to(PASSWD)
    (bad / "linked_folder").symlink_to(outside)
    out = root / "out"
    return out, run_prep([f"source.path={d}", f"out_dir={out}", *FAST]), n_good, good


@pytest.mark.parametrize("name, fragment", [(n, f) for n, _, f in BAD] + LINKS, ids=[n for n, _, _ in BAD] + [n for n, _ in LINKS])
def test_each_bad_input_is_quarantined_with_a_clear_reason(mixed, name, fragment):
    _, manifest, _, _ = mixed
    reasons = {Path(q["path"]).name: q["reason"] for q in manifest["quarantined"]}
    assert name in reasons, sorted(reasons)
    reason = reasons[name]
    assert fragment in reason and "\n" not in reason and len(reason) < 400, reason


def test_exactly_the_good_documents_are_kept(mixed):
    out, manifest, n_good, good = mixed
    assert good["counts"]["kept"] == n_good and good["quarantined"] == []
    assert manifest["counts"]["kept"] == n_good
    assert len(manifest["quarantined"]) == len(BAD) + len(LINKS)
    rows = pq.read_table(out / "documents", columns=["id", "text"]).to_pylist()
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) == n_good  # nothing duplicated
    good_ids = set(pq.read_table(Path(out).parent / "good_out" / "documents", columns=["id"]).column("id").to_pylist())
    assert set(ids) == good_ids  # nothing lost, nothing from a bad file
    assert {f"pmid:{p}" for p in UTF16_PMIDS + EXTRA_PMIDS} <= good_ids
    assert {f"pmcid:PMC{p}" for p in GOOD_JATS_PMCIDS} <= good_ids
    assert not {f"pmid:{p}" for p in BAD_FILE_PMIDS + TRUNCATED_PMIDS} & set(ids)  # discarded with their file
    assert manifest["splits"]["train"]["documents"] + manifest["splits"]["val"]["documents"] == n_good


def test_no_file_content_reaches_the_manifest(mixed):
    out, _, _, _ = mixed
    text = (out / "manifest.json").read_text()
    first_line = PASSWD.read_text().splitlines()[0] if PASSWD.exists() else "root:x:0:0"
    assert first_line[:12] not in text and "root:x:" not in text
    assert "lol" not in text and "Bad file record" not in text


def test_a_link_that_is_followed_on_request_still_leaks_nothing(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    pubmed_file(d / "one.xml", [citation(9_960_001, "One good study of aspirin", abstract_text(5, 80))])
    (d / "passwd.xml").symlink_to(PASSWD)
    m = run_prep([f"source.path={d}", "source.follow_symlinks=true", f"out_dir={tmp_path / 'out'}", *FAST])
    assert m["counts"]["kept"] == 1
    [q] = m["quarantined"]
    assert q["reason"].startswith("not XML (it starts with text") and "root" not in q["reason"]
    assert "root:x:" not in (tmp_path / "out" / "manifest.json").read_text()


# ---- faults of the remote sources: wrong checksum, 404, a truncated file, bad metadata ---------------


def _gz_pubmed(pmids: tuple[int, ...]) -> bytes:
    body = "".join(citation(p, f"Downloaded study {p} on aspirin", abstract_text(p, 80)) for p in pmids)
    return gzip.compress(f'<?xml version="1.0"?>\n<PubmedArticleSet>{body}</PubmedArticleSet>\n'.encode(), mtime=0)


def test_download_faults_are_quarantined_and_the_good_files_kept(tmp_path):
    files = {1: tuple(range(9_970_001, 9_970_011)), 2: tuple(range(9_970_101, 9_970_111)),
             3: (9_970_201,), 4: (9_970_301,), 5: tuple(range(9_970_401, 9_970_411))}
    with running_server() as server:
        rows = []
        for n, pmids in files.items():
            name = f"pubmed26n{n:04d}.xml.gz"
            body = _gz_pubmed(pmids)
            if n == 4:
                body = body[: len(body) // 2]  # published truncated: its md5 matches, its gzip does not end
            if n != 3:  # n0003 is listed but missing (404)
                server.add(f"/pubmed/{name}", body)
            digest = "0" * 32 if n == 2 else hashlib.md5(body).hexdigest()  # n0002: wrong checksum
            server.add(f"/pubmed/{name}.md5", f"MD5({name})= {digest}\n".encode())
            rows.append(f'<a href="{name}">{name}</a> <a href="{name}.md5">{name}.md5</a>')
        server.add("/pubmed/", ("<html><pre>" + "\n".join(rows) + "</pre></html>").encode(), content_type="text/html")
        m = run_prep(["source=pubmed_baseline", f"source.base_url={server.url}pubmed/", "source.retries=1",
                      "source.backoff_s=0.001", "source.backoff_max_s=0.01", "source.progress=false",
                      "source.timeout_s=5", f"out_dir={tmp_path / 'out'}", *FAST])
    reasons = {Path(str(q["path"])).name: q["reason"] for q in m["quarantined"]}
    assert set(reasons) == {"pubmed26n0002.xml.gz", "pubmed26n0003.xml.gz", "pubmed26n0004.xml.gz"}
    assert "does not match the published" in reasons["pubmed26n0002.xml.gz"]
    assert "HTTP 404" in reasons["pubmed26n0003.xml.gz"]
    assert "truncated or corrupt gzip" in reasons["pubmed26n0004.xml.gz"]
    assert m["counts"]["kept"] == len(files[1]) + len(files[5])
    assert m["counts"]["input_files"] == 5 and m["counts"]["quarantined_files"] == 3


def test_bad_pmc_metadata_skips_that_article_only(tmp_path):
    paragraph = escape(abstract_text(42, 90))
    with running_server() as server:
        serve_pmc(server, meta_patch={"PMC500.1": {"version": "abc"}}, paragraph=paragraph)
        m = run_prep(["source=pmc_oa", f"source.base_url={server.url}", "source.retries=1", "source.backoff_s=0.001",
                      "source.backoff_max_s=0.01", "source.progress=false", "source.timeout_s=5",
                      f"out_dir={tmp_path / 'out'}", *FAST])
    [q] = m["quarantined"]
    assert Path(q["path"]).name == "PMC500.1.json" and "field 'version'" in q["reason"] and "abc" not in q["reason"]
    ids = set(pq.read_table(tmp_path / "out" / "documents", columns=["id"]).column("id").to_pylist())
    assert ids == {"pmcid:PMC100", "pmcid:PMC600"} and m["counts"]["kept"] == 2
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["counts"]["kept"] == 2
