"""Memory per record is bounded: lxml builds a record's whole tree before reporting it, so a tiny
gzip of millions of elements inside one record once took the parser to 518 MB. Peak RSS is measured
in a fresh process (`resource.getrusage`), around the parse only."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from data_prep.errors import InputFileError
from data_prep.parse.jats import iter_jats
from data_prep.parse.pubmed import iter_pubmed
from data_prep.parse.xml_safety import ParseLimits
from tests.conftest import ROOT

MEASURE = textwrap.dedent("""
    import json, resource, sys
    sys.path.insert(0, sys.argv[1])
    from data_prep.errors import InputFileError
    from data_prep.parse.jats import iter_jats
    from data_prep.parse.pubmed import iter_pubmed
    parse = iter_pubmed if sys.argv[3] == "pubmed" else iter_jats
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {"records": 0, "error": None}
    try:
        for _ in parse(sys.argv[2]):
            out["records"] += 1
    except InputFileError as e:
        out["error"] = e.reason
    out["growth_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(json.dumps(out))
""")
GOOD = ("<PubmedArticle><MedlineCitation><PMID>{pmid}</PMID><Article><ArticleTitle>Study {pmid}</ArticleTitle>"
        "</Article></MedlineCitation></PubmedArticle>")


def measure(path: Path, parser: str = "pubmed") -> dict:
    r = subprocess.run([sys.executable, "-c", MEASURE, str(ROOT), str(path), parser], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)


def bomb(path: Path, body: bytes, *, root: bytes = b"PubmedArticleSet", before: int = 2) -> Path:
    """A gzip of `before` good records, then one record holding `body`, then a good one."""
    good = "".join(GOOD.format(pmid=i + 1) for i in range(before)).encode()
    record = b"<PubmedArticle><MedlineCitation><PMID>99</PMID>" + body + b"</MedlineCitation></PubmedArticle>"
    data = b"<" + root + b">" + good + record + GOOD.format(pmid=100).encode() + b"</" + root + b">"
    path.write_bytes(gzip.compress(data, 9))
    return path


def test_four_million_empty_elements_in_one_record_keep_memory_flat(tmp_path):
    p = bomb(tmp_path / "bomb.xml.gz", b"<x/>" * 4_000_000)
    assert p.stat().st_size < 20_000  # the 16 KB gzip of the report
    res = measure(p)
    assert res["growth_mb"] < 150, res  # 518 MB before the bound
    assert res["records"] == 2 and "record 3 has more than 500,000" in res["error"]
    assert "parse.max_record_nodes" in res["error"]


@pytest.mark.slow
def test_millions_of_attributes_and_elements_outside_records_are_bounded_too(tmp_path):
    attrs = b"<x " + b" ".join(b"a%d=''" % i for i in range(2_000_000)) + b"/>"
    res = measure(bomb(tmp_path / "attrs.xml.gz", attrs))
    assert res["growth_mb"] < 150 and "more than 500,000" in res["error"], res
    between = tmp_path / "between.xml.gz"  # junk between records, at the root
    between.write_bytes(gzip.compress(b"<PubmedArticleSet>" + GOOD.format(pmid=1).encode() + b"<j/>" * 3_000_000
                                      + b"</PubmedArticleSet>", 9))
    res = measure(between)
    assert res["growth_mb"] < 150 and res["records"] == 1 and "record 2" in res["error"], res


def test_a_jats_article_with_millions_of_elements_is_bounded(tmp_path):
    p = tmp_path / "article.nxml.gz"
    p.write_bytes(gzip.compress(b"<article><front/><body><p>" + b"<italic/>" * 3_000_000 + b"</p></body></article>", 9))
    res = measure(p, "jats")
    assert res["growth_mb"] < 150 and res["records"] == 0 and "record 1 has more than" in res["error"], res


def test_the_bounds_are_configurable_and_real_records_pass(tmp_path):
    ok = bomb(tmp_path / "ok.xml.gz", b"<x/>" * 20_000)
    assert len(list(iter_pubmed(ok))) == 4  # a large real record is far below the default
    with pytest.raises(InputFileError, match=r"record 3 has more than 10,000 .*parse.max_record_nodes"):
        list(iter_pubmed(ok, limits=ParseLimits(max_record_nodes=10_000)))
    text = tmp_path / "text.nxml"
    text.write_bytes(b"<article><body>" + b"<p>" + b"word " * 500_000 + b"</p>" * 1 + b"</body></article>")
    assert len(list(iter_jats(text))) == 1
    with pytest.raises(InputFileError, match=r"record 1 is larger than 1 MiB .*parse.max_record_mb"):
        list(iter_jats(text, limits=ParseLimits(max_record_mb=1)))
