"""resolve_inputs for every source, against generated fixtures in NCBI's and the PMC bucket's layouts."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

import demo_corpus.corpus
from common.config import ConfigError
from data_prep.errors import InputFileError, PrepError
from data_prep.sources import InputFile, resolve_inputs, validate_source
from data_prep.sources.config import parse_file_range
from data_prep.sources.download import ChecksumError, DownloadError, marker_path
from data_prep.sources.pmc_oa import license_group, newest_versions, normalize_license
from data_prep.sources.pubmed import parse_listing
from tests.conftest import ROOT, shared_path
from tests.data_prep.conftest import compose_prep
from tests.data_prep.sources.test_download import FakeServer, running_server

FAST = {"connections": 2, "retries": 2, "backoff_s": 0.001, "backoff_max_s": 0.005, "timeout_s": 5, "progress": False}


@pytest.fixture
def fake_server():
    with running_server() as server:
        yield server


def md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


# --------------------------------------------------------------------------- config


def test_file_ranges():
    assert parse_file_range("all") is None and parse_file_range(None) is None
    assert parse_file_range(5) == [(5, 5)]
    assert parse_file_range("1-10") == [(1, 10)]
    assert parse_file_range("1-3,7") == [(1, 3), (7, 7)]
    assert parse_file_range([2, "4-5"]) == [(2, 2), (4, 5)]
    for bad in ["3-1", "0", "x", "1-", "", True, 2.5]:
        with pytest.raises(ConfigError, match="source.files"):
            parse_file_range(bad)


@pytest.mark.parametrize(
    "cfg, key",
    [
        ({"name": "pubmed_basline"}, "source.name"),
        ({"name": "pubmed_baseline", "file": "1-3"}, "source.file"),
        ({"name": "pubmed_baseline", "files": "3-1"}, "source.files"),
        ({"name": "pubmed_updates", "connections": 50}, "source.connections"),
        ({"name": "pubmed_updates", "base_url": "ftp://ftp.ncbi.nlm.nih.gov/pubmed/"}, "source.base_url"),
        ({"name": "pubmed_baseline", "retries": "many"}, "source.retries"),
        ({"name": "pmc_oa", "license_groups": ["commercial", "free"]}, "source.license_groups"),
        ({"name": "pmc_oa", "license_groups": []}, "source.license_groups"),
        ({"name": "pmc_oa", "pmcids": ["PMC12", "doi:10.1/x"]}, "source.pmcids"),
        ({"name": "pmc_oa", "limit": -1}, "source.limit"),
        ({"name": "pmc_oa", "packages": ["/nonexistent/oa.tar.gz"]}, "source.packages"),
        ({"name": "pmc_oa", "remote": False}, "source.remote"),
        ({"name": "pmc_oa", "inventory": "yesterday"}, "source.inventory"),
        ({"name": "local"}, "source.path"),
        ({"name": "local", "path": "???"}, "source.path"),
        ({"name": "local", "path": "/nonexistent/dir"}, "source.path"),
        ({"name": "local", "path": ".", "recursive": True}, "source.recursive"),
        ({"name": "demo", "n_abstract": 3}, "source.n_abstract"),
    ],
)
def test_bad_config_fails_before_any_work(cfg, key, tmp_path):
    with pytest.raises(ConfigError) as ei:
        resolve_inputs(cfg, tmp_path / "cache")
    assert ei.value.key == key
    assert not (tmp_path / "cache").exists()


def test_shipped_source_configs_validate():
    conf = ROOT / "conf" / "source"
    for name in ["pubmed_baseline", "pubmed_updates", "pmc_oa", "local", "demo"]:
        cfg = yaml.safe_load((conf / f"{name}.yaml").read_text())
        assert cfg["defaults"][0] == f"{name}_schema"  # the YAML picks its schema; the defaults live there
        source = compose_prep([f"source={name}", "out_dir=unused"]).source
        assert source.name == name
        if name == "local":
            with pytest.raises(ConfigError, match="source.path.*required"):
                validate_source(source)
            source.path = str(conf)
        assert validate_source(source).name == name


def test_omegaconf_config_is_accepted(tmp_path):
    (tmp_path / "a.xml").write_text("<PubmedArticleSet/>")
    cfg = OmegaConf.create({"name": "local", "path": str(tmp_path)})
    assert [f.path.name for f in resolve_inputs(cfg, tmp_path / "cache")] == ["a.xml"]


# --------------------------------------------------------------------------- PubMed (NCBI layout)


def pubmed_gz(n: int) -> bytes:
    xml = (f'<?xml version="1.0"?><PubmedArticleSet><PubmedArticle><MedlineCitation Status="MEDLINE">'
           f'<PMID Version="1">{1000 + n}</PMID><Article><ArticleTitle>File {n}</ArticleTitle></Article>'
           f"</MedlineCitation></PubmedArticle></PubmedArticleSet>")
    return gzip.compress(xml.encode() * 50, mtime=0)


def serve_ncbi(server: FakeServer, prefix: str, numbers, *, yy: int = 26, bad_md5=(), missing=()) -> dict[int, bytes]:
    """An NCBI-style directory: Apache index, files, .md5 siblings, README and _stats.html."""
    bodies, rows = {}, []
    for n in numbers:
        name = f"pubmed{yy}n{n:04d}.xml.gz"
        bodies[n] = pubmed_gz(n)
        if n not in missing:
            server.add(prefix + name, bodies[n])
        digest = "0" * 32 if n in bad_md5 else md5(bodies[n])
        server.add(prefix + name + ".md5", f"MD5({name})= {digest}\n".encode())
        for f in (name, name + ".md5", f"pubmed{yy}n{n:04d}_stats.html"):
            rows.append(f'<a href="{f}">{f}</a>{" " * 10}2026-01-29 10:23   19M')
    html = ("<html><head><title>Index of /pubmed/baseline</title></head><body><h1>Index of /pubmed/baseline</h1>"
            '<pre>Name                    Last modified      Size  <hr><a href="/pubmed/">Parent Directory</a>\n'
            '<a href="README.txt">README.txt</a>      2025-12-10 10:00  4.5K\n' + "\n".join(rows) + "</pre></body></html>")
    server.add(prefix, html.encode(), content_type="text/html")
    return bodies


def test_parse_listing_keeps_only_pubmed_files_in_number_order():
    html = ('<a href="pubmed26n0010.xml.gz">x</a><a href="pubmed26n0002.xml.gz.md5">x</a>'
            '<a href="pubmed26n0002.xml.gz">x</a><a href="README.txt">x</a><a href="pubmed26n0002_stats.html">'
            '<a href="/pubmed/baseline/pubmed26n0002.xml.gz">dup</a>')
    assert [(f.year, f.number, f.name) for f in parse_listing(html)] == [
        (26, 2, "pubmed26n0002.xml.gz"), (26, 10, "pubmed26n0010.xml.gz")]


def test_pubmed_baseline_downloads_the_selected_range(fake_server, tmp_path):
    bodies = serve_ncbi(fake_server, "/pubmed/baseline/", range(1, 6))
    cfg = {"name": "pubmed_baseline", "base_url": fake_server.url + "pubmed/baseline/", "files": "1-2,4", **FAST}
    inputs = resolve_inputs(cfg, tmp_path)
    assert [f.order for f in inputs] == [1, 2, 4]
    assert [f.path.name for f in inputs] == ["pubmed26n0001.xml.gz", "pubmed26n0002.xml.gz", "pubmed26n0004.xml.gz"]
    for f in inputs:
        assert f.path.read_bytes() == bodies[f.order]
        assert f.meta["md5"] == md5(bodies[f.order])
        assert f.path.parent == tmp_path / "pubmed_baseline"
    assert fake_server.gets("/pubmed/baseline/pubmed26n0003.xml.gz") == 0

    # Idempotent rerun: only the listing is fetched again; no data file, no .md5.
    again = resolve_inputs(cfg, tmp_path)
    assert again == inputs
    for n in (1, 2, 4):
        assert fake_server.gets(f"/pubmed/baseline/pubmed26n{n:04d}.xml.gz") == 1
        assert fake_server.gets(f"/pubmed/baseline/pubmed26n{n:04d}.xml.gz.md5") == 1
    assert fake_server.gets("/pubmed/baseline/") == 2


def test_pubmed_bad_md5_and_404_are_quarantined_and_the_rest_completes(fake_server, tmp_path, caplog):
    serve_ncbi(fake_server, "/pubmed/updatefiles/", range(1335, 1340), bad_md5={1336}, missing={1338})
    cfg = {"name": "pubmed_updates", "base_url": fake_server.url + "pubmed/updatefiles", **FAST}
    quarantine: list[PrepError] = []
    inputs = resolve_inputs(cfg, tmp_path, quarantine=quarantine)
    assert [f.order for f in inputs] == [1335, 1337, 1339]
    assert len(quarantine) == 2
    bad, gone = sorted(quarantine, key=str)
    assert isinstance(bad, ChecksumError) and "pubmed26n1336.xml.gz" in str(bad)
    assert (tmp_path / "pubmed_updates" / "pubmed26n1336.xml.gz.bad-md5").exists()
    assert not (tmp_path / "pubmed_updates" / "pubmed26n1336.xml.gz").exists()
    assert isinstance(gone, DownloadError) and "pubmed26n1338.xml.gz: HTTP 404" in str(gone)
    assert gone.path.endswith("pubmed26n1338.xml.gz") and bad.path.endswith("pubmed26n1336.xml.gz")
    assert "pubmed26n1336.xml.gz" in caplog.text  # one line per failure in the log too


def test_pubmed_resumes_a_partial_file_left_by_a_killed_run(fake_server, tmp_path):
    bodies = serve_ncbi(fake_server, "/pubmed/baseline/", [1])
    part = tmp_path / "pubmed_baseline" / "pubmed26n0001.xml.gz.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(bodies[1][:100])
    [f] = resolve_inputs({"name": "pubmed_baseline", "base_url": fake_server.url + "pubmed/baseline/", **FAST}, tmp_path)
    assert f.path.read_bytes() == bodies[1] and not part.exists()
    assert fake_server.ranges == [("/pubmed/baseline/pubmed26n0001.xml.gz", "bytes=100-")]


def test_pubmed_range_outside_the_listing_names_the_key(fake_server, tmp_path):
    serve_ncbi(fake_server, "/pubmed/updatefiles/", [1335, 1336])
    cfg = {"name": "pubmed_updates", "base_url": fake_server.url + "pubmed/updatefiles/", "files": "1-10", **FAST}
    with pytest.raises(ConfigError, match=r"source.files.*selects no file.*n1335-n1336"):
        resolve_inputs(cfg, tmp_path)


def test_pubmed_wrong_base_url_is_a_clear_error(fake_server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        resolve_inputs({"name": "pubmed_baseline", "base_url": fake_server.url + "nothing/", **FAST}, tmp_path)
    fake_server.add("/empty/", b"<html>Index of /empty</html>")
    with pytest.raises(PrepError, match="links no pubmedYYnNNNN"):
        resolve_inputs({"name": "pubmed_baseline", "base_url": fake_server.url + "empty/", **FAST}, tmp_path)


def test_pubmed_all_files_failing_raises(fake_server, tmp_path):
    serve_ncbi(fake_server, "/b/", [1, 2], missing={1, 2})
    with pytest.raises(PrepError, match="all 2 selected files failed"):
        resolve_inputs({"name": "pubmed_baseline", "base_url": fake_server.url + "b/", **FAST}, tmp_path)


# --------------------------------------------------------------------------- PMC OA (fake S3)

INV = "inventory-reports/pmc-oa-opendata/metadata/"
OLD, NEW = "2026-11-20T01-00Z", "2026-11-21T01-00Z"

# (pmcid, version, license_code, is_retracted, is_manuscript)
ARTICLES = [
    (100, 1, "CC BY", False, False),
    (100, 2, "CC BY", False, False),
    (100, 10, "CC BY", False, False),  # .10 > .2: must be chosen
    (200, 1, "CC BY-NC", False, False),
    (300, 1, "TDM", False, True),
    (400, 1, "CC BY", False, False),
    (400, 2, "CC BY", True, False),  # newest version retracted: the article is skipped
    (500, 1, "CC0", False, False),
    (600, 1, "CC BY-SA", False, False),
    (700, 1, None, False, False),
]


def jats(pmcid: int, ver: int, paragraph: str = "Text.") -> bytes:
    return (f'<?xml version="1.0"?><article><front><article-meta><article-id pub-id-type="pmc">PMC{pmcid}</article-id>'
            f"<title-group><article-title>Article {pmcid} v{ver}</article-title></title-group></article-meta></front>"
            f"<body><p>{paragraph}</p></body></article>").encode()


def serve_pmc(server: FakeServer, *, bad_xml_md5=(), inventory=True, newest_has_manifest=True,
              meta_patch: dict[str, dict] | None = None, paragraph: str = "Text.") -> dict[str, bytes]:
    """The 2026 bucket: article folders, metadata/ copies, and two daily inventories of metadata/.
    `meta_patch` overrides metadata fields of some versions ({"PMC500.1": {"version": "abc"}});
    `paragraph` is each article's body text."""
    xml_bodies, rows = {}, []
    for pmcid, ver, lic, retracted, manuscript in ARTICLES:
        stem = f"PMC{pmcid}.{ver}"
        body = jats(pmcid, ver, paragraph)
        xml_bodies[stem] = body
        xml_key = f"{stem}/{stem}.xml"
        server.add("/" + xml_key, body, content_type="application/xml")
        digest = "f" * 32 if stem in bad_xml_md5 else md5(body)
        meta = {"pmcid": f"PMC{pmcid}", "version": ver, "pmid": 1000 + pmcid, "doi": f"10.1/{pmcid}",
                "mid": None, "title": f"Article {pmcid}", "citation": "J. 2026", "is_pmc_openaccess": not manuscript,
                "is_manuscript": manuscript, "is_historical_ocr": False, "is_retracted": retracted,
                "license_code": lic, "xml_url": f"s3://pmc-oa-opendata/{xml_key}?md5={digest}",
                "text_url": f"s3://pmc-oa-opendata/{stem}/{stem}.txt?md5={'a' * 32}", "pdf_url": None, "media_urls": []}
        meta.update((meta_patch or {}).get(stem, {}))
        raw = json.dumps(meta).encode()
        server.add(f"/metadata/{stem}.json", raw, content_type="application/json")
        server.s3_keys += [xml_key, f"{stem}/{stem}.txt", f"metadata/{stem}.json"]
        rows.append(["pmc-oa-opendata", f"metadata/{stem}.json", "2026-11-08T11:47:59.000Z", md5(raw)])
    if inventory:
        for stamp, uuids in [(OLD, ["old-0"]), (NEW, ["new-0", "new-1"])]:
            files = []
            for i, uuid in enumerate(uuids):
                buf = io.StringIO()
                csv.writer(buf, quoting=csv.QUOTE_ALL).writerows(rows[i::len(uuids)])
                gz = gzip.compress(buf.getvalue().encode(), mtime=0)
                key = f"{INV}data/{uuid}.csv.gz"
                server.add("/" + key, gz)
                server.s3_keys.append(key)
                files.append({"key": key, "size": len(gz), "MD5checksum": md5(gz)})
            manifest = {"sourceBucket": "pmc-oa-opendata", "destinationBucket": "arn:aws:s3:::pmc-oa-opendata",
                        "version": "2016-11-30", "fileFormat": "CSV", "fileSchema": "Bucket, Key, LastModifiedDate, ETag",
                        "files": files}
            if stamp == NEW and not newest_has_manifest:
                server.s3_keys.append(f"{INV}{stamp}/manifest.checksum")
                continue
            server.add(f"/{INV}{stamp}/manifest.json", json.dumps(manifest).encode(), content_type="application/json")
            server.s3_keys += [f"{INV}{stamp}/manifest.json", f"{INV}{stamp}/manifest.checksum"]
    return xml_bodies


def pmc_cfg(server: FakeServer, **kw) -> dict:
    return {"name": "pmc_oa", "base_url": server.url, **FAST, **kw}


def test_license_codes_and_groups():
    assert normalize_license("cc by-nc-sa") == "CC BY-NC-SA"
    assert normalize_license("CC_BY 4.0") == "CC BY"
    assert normalize_license("cc0") == "CC0"
    assert [license_group(c) for c in ["CC0", "CC BY", "CC BY-SA", "CC BY-ND"]] == ["commercial"] * 4
    assert [license_group(c) for c in ["CC BY-NC", "CC BY-NC-SA", "CC BY-NC-ND"]] == ["noncommercial"] * 3
    assert [license_group(c) for c in ["TDM", None, "", "publisher-specific"]] == ["other"] * 4


def test_newest_version_is_numeric_not_lexical():
    rows = iter([(5, 2, bytes(16)), (5, 10, b"\x01" * 16), (3, 1, bytes(16)), (5, 9, bytes(16))])
    cands = newest_versions(rows)
    assert [(c.pmcid, c.version) for c in cands] == [(3, 1), (5, 10)]
    assert cands[0].etag is None and cands[1].etag == "01" * 16


def test_pmc_oa_from_inventory_selects_commercial_and_skips_retracted(fake_server, tmp_path):
    bodies = serve_pmc(fake_server, bad_xml_md5={"PMC700.1"})
    quarantine: list[PrepError] = []
    inputs = resolve_inputs(pmc_cfg(fake_server), tmp_path, quarantine=quarantine)
    assert [f.meta["pmcid"] for f in inputs] == ["PMC100", "PMC500", "PMC600"]
    assert [f.order for f in inputs] == [0, 1, 2]
    first = inputs[0]
    assert first.path.name == "PMC100.10.xml" and first.path.read_bytes() == bodies["PMC100.10"]
    assert {k: first.meta[k] for k in ("license", "pmid", "pmcid", "version", "md5")} == {
        "license": "CC BY", "pmid": "1100", "pmcid": "PMC100", "version": 10, "md5": md5(bodies["PMC100.10"])}
    assert inputs[1].meta["license"] == "CC0" and inputs[2].meta["license"] == "CC BY-SA"
    # The newest inventory was used; older versions' metadata was never fetched; retracted not downloaded.
    assert fake_server.gets(f"/{INV}data/old-0.csv.gz") == 0
    assert fake_server.gets("/metadata/PMC100.2.json") == 0 and fake_server.gets("/metadata/PMC100.1.json") == 0
    assert fake_server.gets("/PMC400.2/PMC400.2.xml") == 0 and fake_server.gets("/PMC400.1/PMC400.1.xml") == 0
    assert fake_server.gets("/PMC200.1/PMC200.1.xml") == 0  # non-commercial
    # PMC700 has no license ("other"): not selected at all; no error for it.
    assert quarantine == []

    # Idempotent rerun: no article, metadata or inventory file is fetched again.
    before = dict(fake_server.counts)
    again = resolve_inputs(pmc_cfg(fake_server), tmp_path)
    assert again == inputs
    changed = {k: v - before.get(k, 0) for k, v in fake_server.counts.items() if v != before.get(k, 0)}
    assert all(k.startswith("/?list-type=2") for k in changed), changed


def test_pmc_oa_license_groups_and_wrong_article_md5(fake_server, tmp_path):
    serve_pmc(fake_server, bad_xml_md5={"PMC700.1"})
    quarantine: list[PrepError] = []
    cfg = pmc_cfg(fake_server, license_groups=["noncommercial", "other"])
    inputs = resolve_inputs(cfg, tmp_path, quarantine=quarantine)
    assert [(f.meta["pmcid"], f.meta["license_group"]) for f in inputs] == [("PMC200", "noncommercial"),
                                                                            ("PMC300", "other")]
    assert inputs[1].meta["is_manuscript"] is True
    [err] = quarantine
    assert isinstance(err, ChecksumError) and "PMC700.1.xml" in str(err)


@pytest.mark.parametrize("field, value", [("version", "abc"), ("version", 0), ("pmid", {"id": 1}), ("pmid", "12a"),
                                          ("license_code", 5), ("xml_url", ["s3://x"]), ("is_retracted", "maybe")])
def test_pmc_oa_one_bad_metadata_field_skips_that_article_and_the_run_goes_on(fake_server, tmp_path, caplog, field,
                                                                              value):
    serve_pmc(fake_server, meta_patch={"PMC500.1": {field: value}})
    quarantine: list[PrepError] = []
    inputs = resolve_inputs(pmc_cfg(fake_server), tmp_path, quarantine=quarantine)
    assert [f.meta["pmcid"] for f in inputs] == ["PMC100", "PMC600"]
    [err] = quarantine
    assert isinstance(err, InputFileError) and Path(err.path).name == "PMC500.1.json"
    assert f"field '{field}'" in err.reason and repr(value) not in err.reason  # names the field, quotes nothing
    assert fake_server.gets("/PMC500.1/PMC500.1.xml") == 0
    assert "PMC500.1.json" in caplog.text


def test_plain_http_base_url_is_warned_about(fake_server, tmp_path, caplog):
    serve_ncbi(fake_server, "/pubmed/baseline/", [1])
    assert fake_server.url.startswith("http://")
    resolve_inputs({"name": "pubmed_baseline", "base_url": fake_server.url + "pubmed/baseline/", **FAST}, tmp_path)
    assert "plain http://" in caplog.text and "source.base_url" in caplog.text


def test_pmc_oa_limit_stops_early(fake_server, tmp_path):
    serve_pmc(fake_server)
    inputs = resolve_inputs(pmc_cfg(fake_server, limit=2), tmp_path)
    assert [f.meta["pmcid"] for f in inputs] == ["PMC100", "PMC500"]
    assert fake_server.gets("/PMC600.1/PMC600.1.xml") == 0


def test_pmc_oa_falls_back_when_newest_inventory_has_no_manifest(fake_server, tmp_path):
    serve_pmc(fake_server, newest_has_manifest=False)
    inputs = resolve_inputs(pmc_cfg(fake_server), tmp_path)
    assert [f.meta["pmcid"] for f in inputs] == ["PMC100", "PMC500", "PMC600"]
    assert fake_server.gets(f"/{INV}data/old-0.csv.gz") == 1


def test_pmc_oa_pinned_inventory_and_missing_inventory(fake_server, tmp_path):
    serve_pmc(fake_server)
    resolve_inputs(pmc_cfg(fake_server, inventory=OLD, limit=1), tmp_path)
    assert fake_server.gets(f"/{INV}data/old-0.csv.gz") == 1 and fake_server.gets(f"/{INV}data/new-0.csv.gz") == 0
    with pytest.raises(DownloadError, match=r"HTTP 404|no readable manifest"):
        resolve_inputs(pmc_cfg(fake_server, inventory="2020-01-01T00-00Z"), tmp_path / "x")


def test_pmc_oa_explicit_pmcids_page_through_listobjects(fake_server, tmp_path):
    serve_pmc(fake_server, inventory=False)
    fake_server.s3_page_size = 1  # every version on its own page: exercises continuation tokens
    tokens = []
    fake_server.listing_hook = lambda q: tokens.append(q.get("continuation-token"))
    quarantine: list[PrepError] = []
    cfg = pmc_cfg(fake_server, pmcids=["PMC100", 400, "pmc200", "PMC999"], license_groups=["commercial", "noncommercial"])
    inputs = resolve_inputs(cfg, tmp_path, quarantine=quarantine)
    assert [(f.meta["pmcid"], f.meta["version"]) for f in inputs] == [("PMC100", 10), ("PMC200", 1)]
    assert "tok1" in tokens and "tok2" in tokens  # PMC100 has 3 versions -> 3 pages
    [err] = quarantine
    assert "PMC999 has no version in the bucket" in str(err)


def make_package(path: Path, names: list[str]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name in names:
            data = jats(1, 1)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_pmc_oa_legacy_packages_load_first(fake_server, tmp_path):
    serve_pmc(fake_server)
    pkg = make_package(tmp_path / "oa_comm_xml.PMC000xxxxxx.baseline.2025-06-01.tar.gz",
                       ["PMC000xxxxxx/PMC100.xml", "PMC000xxxxxx/PMC9.xml"])
    offline = resolve_inputs({"name": "pmc_oa", "packages": [str(pkg)], "remote": False}, tmp_path / "c1")
    assert [f.path.name for f in offline] == ["PMC100.xml", "PMC9.xml"] and [f.order for f in offline] == [0, 1]
    assert fake_server.counts == {}
    both = resolve_inputs(pmc_cfg(fake_server, packages=[str(pkg)], limit=1), tmp_path / "c2")
    assert [f.path.name for f in both] == ["PMC100.xml", "PMC9.xml", "PMC100.10.xml"]
    assert [f.order for f in both] == [0, 1, 2]


def test_pmc_oa_hostile_package_is_quarantined(tmp_path):
    pkg = tmp_path / "evil.tar.gz"
    with tarfile.open(pkg, "w:gz") as tar:
        info = tarfile.TarInfo("../../escape.xml")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    good = make_package(tmp_path / "good.tar.gz", ["a.xml"])
    quarantine: list[PrepError] = []
    inputs = resolve_inputs({"name": "pmc_oa", "packages": [str(pkg), str(good)], "remote": False}, tmp_path / "c",
                            quarantine=quarantine)
    assert [f.path.name for f in inputs] == ["a.xml"]
    assert len(quarantine) == 1 and "evil.tar.gz: unsafe tarball" in str(quarantine[0])
    assert not (tmp_path / "escape.xml").exists()


# --------------------------------------------------------------------------- local


def test_local_directory_orders_pubmed_by_year_and_number_then_paths(tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    for name in ["zeta.nxml", "pubmed26n0002.xml.gz", "sub/PMC5.nxml.gz", "pubmed25n1274.xml.gz",
                 "pubmed26n0010.xml.gz", "medline16n0902.xml", "alpha.xml", "notes.txt", "sub/x.json"]:
        (data / name).write_bytes(b"<x/>")
    make_package(data / "pkg.tar.gz", ["b.nxml", "a.xml"])
    inputs = resolve_inputs({"name": "local", "path": str(data)}, tmp_path / "cache")
    names = [f.path.name for f in inputs]
    assert names == ["medline16n0902.xml", "pubmed25n1274.xml.gz", "pubmed26n0002.xml.gz", "pubmed26n0010.xml.gz",
                     "alpha.xml", "a.xml", "b.nxml", "PMC5.nxml.gz", "zeta.nxml"]
    assert [f.order for f in inputs] == list(range(len(names)))
    assert inputs[5].meta == {"package": str(data / "pkg.tar.gz"), "member": "a.xml"}
    assert (tmp_path / "cache" / "local" / "packages") in inputs[5].path.parents
    assert inputs[0].meta == {}


def test_local_glob_and_single_file(tmp_path):
    for name in ["a.xml", "b.nxml", "c.xml.gz"]:
        (tmp_path / name).write_bytes(b"<x/>")
    assert [f.path.name for f in resolve_inputs({"name": "local", "path": str(tmp_path / "*.xml*")}, tmp_path)] == [
        "a.xml", "c.xml.gz"]
    assert [f.path.name for f in resolve_inputs({"name": "local", "path": str(tmp_path / "b.nxml")}, tmp_path)] == [
        "b.nxml"]
    with pytest.raises(ConfigError, match=r"source.path.*matches no"):
        resolve_inputs({"name": "local", "path": str(tmp_path / "*.tsv")}, tmp_path)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ConfigError, match=r"source.path.*is not a \.xml/"):
        resolve_inputs({"name": "local", "path": str(tmp_path / "notes.txt")}, tmp_path)


@pytest.fixture
def linked(tmp_path) -> Path:
    """An input folder with a file, a link inside it, and links to a file and a folder outside it."""
    outside = tmp_path / "elsewhere"
    (outside / "deep").mkdir(parents=True)
    (outside / "secret.xml").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (outside / "deep" / "far.xml").write_bytes(b"<x/>")
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "real.xml").write_bytes(b"<x/>")
    (data / "inside_link.xml").symlink_to(data / "sub" / "real.xml")
    (data / "inside_dir").symlink_to(data / "sub")
    (data / "passwd.xml").symlink_to(outside / "secret.xml")
    (data / "far_dir").symlink_to(outside / "deep")
    return data


def test_local_links_out_of_source_path_are_not_followed_by_default(linked, tmp_path, caplog):
    quarantine: list[PrepError] = []
    inputs = resolve_inputs({"name": "local", "path": str(linked)}, tmp_path / "cache", quarantine=quarantine)
    assert [f.path.name for f in inputs] == ["real.xml"]  # the file and links to it: read once, by its own path
    reasons = {Path(e.path).name: e.reason for e in quarantine}
    assert set(reasons) == {"passwd.xml", "far_dir"}
    assert "outside source.path" in reasons["passwd.xml"] and "source.follow_symlinks=true" in reasons["passwd.xml"]
    assert str(tmp_path / "elsewhere" / "secret.xml") in reasons["passwd.xml"]  # the target is named...
    assert all("root:" not in r for r in reasons.values())  # ...its content is not
    glob_inputs = resolve_inputs({"name": "local", "path": str(linked / "**" / "*.xml")}, tmp_path / "c2",
                                 quarantine=(q2 := []))
    assert [f.path.name for f in glob_inputs] == ["real.xml"] and "passwd.xml" in str(q2)


def test_local_links_are_followed_when_asked_and_a_named_file_always(linked, tmp_path):
    inputs = resolve_inputs({"name": "local", "path": str(linked), "follow_symlinks": True}, tmp_path / "cache")
    assert sorted(f.path.name for f in inputs) == ["far.xml", "passwd.xml", "real.xml"]
    named = resolve_inputs({"name": "local", "path": str(linked / "passwd.xml")}, tmp_path / "c2")
    assert [f.path.name for f in named] == ["passwd.xml"]


def test_local_shared_pubmed_samples_in_ncbi_order(tmp_path):
    root = shared_path("pubmed")
    inputs = resolve_inputs({"name": "local", "path": str(root)}, tmp_path)
    names = [f.path.name for f in inputs]
    assert names[0] == "medline16n0902_excerpt.split-a.xml.gz"  # the only NCBI-named file comes first
    assert names[1:] == sorted(names[1:])
    assert "PROVENANCE.md" not in names and len(names) == 11


# --------------------------------------------------------------------------- demo


def test_demo_source_calls_the_generator(tmp_path, monkeypatch):
    calls = []

    def generate_demo_corpus(dest: Path, *, seed: int, n_abstracts: int, n_fulltext: int) -> list[Path]:
        calls.append((dest, seed, n_abstracts, n_fulltext))
        return [dest / "b.xml", dest / "a.nxml"]

    monkeypatch.setattr(demo_corpus.corpus, "generate_demo_corpus", generate_demo_corpus)
    inputs = resolve_inputs({"name": "demo", "seed": 7, "n_abstracts": 300, "n_fulltext": 5}, tmp_path)
    assert calls == [(tmp_path / "demo", 7, 300, 5)]
    assert inputs == [InputFile(tmp_path / "demo" / "b.xml", 0, {}), InputFile(tmp_path / "demo" / "a.nxml", 1, {})]


def test_demo_source_defaults_are_the_generators(tmp_path, monkeypatch):
    seen = {}

    def generate_demo_corpus(dest: Path, *, seed: int, n_abstracts: int, n_fulltext: int):
        seen.update(seed=seed, n_abstracts=n_abstracts, n_fulltext=n_fulltext)
        return [dest / "a.xml"]

    monkeypatch.setattr(demo_corpus.corpus, "generate_demo_corpus", generate_demo_corpus)
    assert len(resolve_inputs({"name": "demo", "n_fulltext": 4}, tmp_path)) == 1
    assert seen == {"seed": demo_corpus.SEED, "n_abstracts": demo_corpus.N_ABSTRACTS, "n_fulltext": 4}
    with pytest.raises(ConfigError, match="source.seed"):
        resolve_inputs({"name": "demo", "seed": "x"}, tmp_path)
    with pytest.raises(ConfigError, match="source.n_abstracts"):  # the generator's own limit, checked up front
        resolve_inputs({"name": "demo", "n_abstracts": 3}, tmp_path)
    assert seen["n_abstracts"] == demo_corpus.N_ABSTRACTS and not (tmp_path / "demo").exists()


def test_marker_is_next_to_the_file(tmp_path):
    assert marker_path(tmp_path / "pubmed26n0001.xml.gz").name == "pubmed26n0001.xml.gz.verified"
