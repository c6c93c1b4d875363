"""PMC Open Access full text from the 2026 PMC Article Datasets layout (`s3://pmc-oa-opendata`).

Anonymous HTTPS only. Per article version the bucket holds `PMC{id}.{ver}/PMC{id}.{ver}.xml` (JATS)
and a metadata copy `metadata/PMC{id}.{ver}.json` (license_code, pmid, is_retracted, xml_url with
its md5, ...). The whole-bucket listing is the daily S3 inventory of `metadata/`:
`inventory-reports/pmc-oa-opendata/metadata/{YYYY-MM-DDTHH-MMZ}/manifest.json` -> CSV.gz files with
rows `bucket,key,last_modified,etag`.

Steps: candidates (inventory, or `pmcids` listed with ListObjectsV2) -> newest version per PMCID
(versions compared as numbers) -> metadata JSON (cached, ETag-checked) -> skip retracted and
licenses outside `license_groups` -> download the JATS XML (md5 from `xml_url`, resumable).
Legacy `.tar.gz` packages given in `packages` are extracted safely and come first in load order,
so the current S3 versions win over them.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
import re
from array import array
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from common.atomic import atomic_write_bytes
from data_prep.errors import InputFileError, PrepError
from data_prep.sources.archive import article_files, extraction_dir, safe_extract
from data_prep.sources.config import (
    INVENTORY_STAMP_RE,
    PmcOaSource,
    http_url,
    package_paths,
    pmcid_numbers,
)
from data_prep.sources.download import (
    DownloadError,
    DownloadJob,
    HttpConfig,
    download_all,
    fetch_bytes,
    map_parallel,
    md5_of,
    warn_if_plain_http,
)
from data_prep.sources.s3 import list_objects, object_url, split_s3_url
from data_prep.sources.types import InputFile

log = logging.getLogger(__name__)

BUCKET = "pmc-oa-opendata"
INVENTORY_PREFIX = "inventory-reports/pmc-oa-opendata/metadata/"

# The legacy oa_comm / oa_noncomm / oa_other split, applied to the new per-version license_code.
LICENSE_GROUPS = {
    "commercial": frozenset({"CC0", "CC BY", "CC BY-SA", "CC BY-ND"}),
    "noncommercial": frozenset({"CC BY-NC", "CC BY-NC-SA", "CC BY-NC-ND"}),
}
_META_KEY_RE = re.compile(r"^metadata/PMC(\d+)\.(\d+)\.json$")
_NO_ETAG = bytes(16)


def normalize_license(code: object) -> str | None:
    """`cc-by_nc` / `CC BY-NC 4.0` -> `CC BY-NC`; anything that is not a CC code is returned stripped."""
    if not isinstance(code, str) or not code.strip():
        return None
    s = " ".join(code.upper().replace("_", " ").split())
    m = re.fullmatch(r"CC[ -]?(0|BY(?:[ -](?:NC|SA|ND))*)(?: \d(?:\.\d)?)?", s)
    if m is None:
        return code.strip()
    body = m.group(1)
    return "CC0" if body == "0" else "CC " + body.replace(" ", "-")


def license_group(code: object) -> str:
    norm = normalize_license(code)
    for group, codes in LICENSE_GROUPS.items():
        if norm in codes:
            return group
    return "other"  # TDM (author manuscripts), custom, missing


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class PmcOptions:
    """`source` as what the steps below use (ids as numbers, packages as paths, the HTTP settings)."""

    base_url: str
    groups: frozenset[str]
    pmcids: tuple[int, ...] | None
    limit: int | None
    packages: tuple[Path, ...]
    remote: bool
    inventory: str | None
    http: HttpConfig


def options(src: PmcOaSource) -> PmcOptions:
    return PmcOptions(
        base_url=http_url(src.base_url),
        groups=frozenset(str(getattr(g, "value", g)) for g in src.license_groups),
        pmcids=pmcid_numbers(src.pmcids),
        limit=src.limit,
        packages=package_paths(src.packages),
        remote=src.remote,
        inventory=src.inventory,
        http=src.http(),
    )


# --------------------------------------------------------------------------- candidates


@dataclass(frozen=True)
class Candidate:
    pmcid: int
    version: int
    etag: str | None = None  # md5 of the metadata JSON per the inventory (None: unknown)

    @property
    def stem(self) -> str:
        return f"PMC{self.pmcid}.{self.version}"


def newest_inventory(opts: PmcOptions, cache: Path) -> tuple[str, dict]:
    """(stamp, manifest) of the newest inventory with a manifest, or of the pinned `inventory`."""
    if opts.inventory is not None:
        stamps = [opts.inventory]
    else:
        listing = list_objects(opts.base_url, INVENTORY_PREFIX, opts.http)
        stamps = sorted({m.group(0) for p in listing.prefixes if (m := INVENTORY_STAMP_RE.search(p[len(INVENTORY_PREFIX):]))},
                        reverse=True)
        if not stamps:
            raise DownloadError(opts.base_url + INVENTORY_PREFIX, "no dated inventory found; check source.base_url "
                                                                  "or list articles with source.pmcids")
    for stamp in stamps[:3]:  # the newest may still be being written: fall back to the day before
        local = cache / "inventory" / stamp / "manifest.json"
        if local.is_file():
            return stamp, json.loads(local.read_text())
        url = object_url(opts.base_url, f"{INVENTORY_PREFIX}{stamp}/manifest.json")
        try:
            raw = fetch_bytes(url, opts.http, verify_etag=True, max_bytes=64 << 20)
        except DownloadError as e:
            log.warning("inventory %s unusable (%s); trying an older one", stamp, e.reason)
            continue
        try:
            manifest = json.loads(raw)
        except ValueError as e:
            raise DownloadError(url, f"manifest is not JSON ({e})") from None
        atomic_write_bytes(local, raw)
        return stamp, manifest
    raise DownloadError(opts.base_url + INVENTORY_PREFIX, f"no readable manifest.json in {stamps[:3]}")


def _key_column(manifest: Mapping) -> tuple[int, int]:
    """Column indices of Key and ETag from the manifest's fileSchema (default bucket,key,date,etag)."""
    schema = [c.strip().lower() for c in str(manifest.get("fileSchema", "")).split(",") if c.strip()]
    if "key" in schema and "etag" in schema:
        return schema.index("key"), schema.index("etag")
    return 1, 3


def inventory_rows(paths: list[Path], key_col: int, etag_col: int) -> Iterator[tuple[int, int, bytes]]:
    for path in paths:
        try:
            with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
                for row in csv.reader(f):
                    if len(row) <= max(key_col, etag_col):
                        continue
                    m = _META_KEY_RE.match(row[key_col])
                    if m is None:
                        continue
                    etag = row[etag_col].strip('"').lower()
                    yield int(m.group(1)), int(m.group(2)), (bytes.fromhex(etag) if re.fullmatch(r"[0-9a-f]{32}", etag)
                                                             else _NO_ETAG)
        except (OSError, EOFError, csv.Error, UnicodeDecodeError) as e:
            raise InputFileError(path, f"cannot read inventory CSV.gz ({e}); delete it and rerun") from None


class CandidateTable(Sequence):
    """Newest version per PMCID as packed arrays; `Candidate`s are built only when indexed."""

    def __init__(self, ids: np.ndarray, versions: np.ndarray, etags: np.ndarray):
        self.ids, self.versions, self.etags = ids, versions, etags  # (N,), (N,), (N, 16) uint8

    def __len__(self) -> int:
        return len(self.ids)

    def _one(self, i: int) -> Candidate:
        e = self.etags[i].tobytes()
        return Candidate(int(self.ids[i]), int(self.versions[i]), None if e == _NO_ETAG else e.hex())

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self._one(j) for j in range(*i.indices(len(self)))]
        return self._one(i)


def newest_versions(rows: Iterator[tuple[int, int, bytes]]) -> CandidateTable:
    """The highest version per PMCID (as numbers: .10 > .2), sorted by PMCID.

    Packed into arrays because the inventory has ~8 million rows (tuples or objects need GBs).
    """
    ids, vers, etags = array("q"), array("q"), bytearray()
    for pmcid, ver, etag in rows:
        ids.append(pmcid)
        vers.append(ver)
        etags += etag
    id_np = np.frombuffer(ids, dtype=np.int64) if ids else np.zeros(0, np.int64)
    ver_np = np.frombuffer(vers, dtype=np.int64) if vers else np.zeros(0, np.int64)
    etag_np = np.frombuffer(bytes(etags), dtype=np.uint8).reshape(-1, 16)
    order = np.lexsort((ver_np, id_np))  # by id, then version
    sorted_ids = id_np[order]
    keep = order[np.flatnonzero(np.append(sorted_ids[1:] != sorted_ids[:-1], True))] if len(order) else order
    return CandidateTable(id_np[keep], ver_np[keep], etag_np[keep])


def inventory_candidates(opts: PmcOptions, cache: Path, quarantine: list[PrepError] | None) -> CandidateTable:
    stamp, manifest = newest_inventory(opts, cache)
    files = manifest.get("files")
    if not isinstance(files, list) or not files:
        raise DownloadError(opts.base_url + f"{INVENTORY_PREFIX}{stamp}/manifest.json", "manifest lists no files")
    jobs = []
    for f in files:
        key = str(f.get("key", "")) if isinstance(f, dict) else ""
        if not key.startswith(INVENTORY_PREFIX) or ".." in key.split("/"):
            raise DownloadError(opts.base_url + f"{INVENTORY_PREFIX}{stamp}/manifest.json", f"unexpected file key {key!r}")
        md5 = str(f.get("MD5checksum", "")).lower() or None
        jobs.append(DownloadJob(url=object_url(opts.base_url, key), dest=cache / "inventory" / stamp / Path(key).name,
                                md5=md5 if md5 and re.fullmatch(r"[0-9a-f]{32}", md5) else None))
    results = download_all(jobs, opts.http, desc=f"pmc_oa inventory {stamp}")
    failed = [r.error for r in results if r.error is not None]
    if failed:
        # A partial inventory would silently drop articles: refuse instead.
        raise PrepError(f"pmc_oa: {len(failed)} inventory file(s) failed, first: {failed[0]}")
    key_col, etag_col = _key_column(manifest)
    cands = newest_versions(inventory_rows([r.path for r in results if r.path is not None], key_col, etag_col))
    log.info("pmc_oa: inventory %s lists %d articles", stamp, len(cands))
    return cands


def listed_candidates(opts: PmcOptions, quarantine: list[PrepError] | None) -> list[Candidate]:
    """Newest version of each requested PMCID from ListObjectsV2 on prefix `PMC{id}.`."""
    assert opts.pmcids is not None

    def newest(pmcid: int) -> Candidate | None:
        listing = list_objects(opts.base_url, f"PMC{pmcid}.", opts.http)
        versions = [int(m.group(1)) for p in listing.prefixes if (m := re.fullmatch(rf"PMC{pmcid}\.(\d+)/", p))]
        if not versions:
            _report(quarantine, DownloadError(object_url(opts.base_url, f"PMC{pmcid}."),
                                              f"PMC{pmcid} has no version in the bucket (not open access?)"))
            return None
        return Candidate(pmcid, max(versions))

    return [c for c in map_parallel(newest, opts.pmcids, opts.http.connections) if c is not None]


# --------------------------------------------------------------------------- metadata + selection


def _report(quarantine: list[PrepError] | None, err: PrepError) -> None:
    log.error("%s", err)
    if quarantine is not None:
        quarantine.append(err)


def fetch_metadata(c: Candidate, opts: PmcOptions, cache: Path) -> dict:
    """The version's metadata JSON; a cached copy is reused when it still matches the inventory ETag."""
    local = cache / "metadata" / f"{c.pmcid // 100_000:03d}" / f"{c.stem}.json"
    if c.etag is not None and local.is_file() and md5_of(local) == c.etag:
        raw = local.read_bytes()
    else:
        raw = fetch_bytes(object_url(opts.base_url, f"metadata/{c.stem}.json"), opts.http,
                          verify_etag=True, max_bytes=16 << 20)
        atomic_write_bytes(local, raw)
    try:
        meta = json.loads(raw)
    except ValueError as e:
        raise InputFileError(local, f"metadata is not JSON ({e})") from None
    if not isinstance(meta, dict) or str(meta.get("pmcid", "")).upper() not in (f"PMC{c.pmcid}", str(c.pmcid)):
        raise InputFileError(local, f"metadata is not for PMC{c.pmcid}; the article is skipped")
    check_metadata(meta, local)
    return meta


# Field -> (accepted types, what it must be). A field outside them skips that one article (it is
# quarantined); a bad value must never stop the run. bool is an int in Python: refused separately.
_META_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "version": ((int, str), "a whole number >= 1"),
    "pmid": ((int, str), "a PMID (digits)"),
    "doi": ((str,), "a string"),
    "license_code": ((str,), "a string"),
    "xml_url": ((str,), "an s3:// URL"),
    "is_retracted": ((bool, str, int), "true or false"),
    "is_manuscript": ((bool, str, int), "true or false"),
}


def check_metadata(meta: Mapping, path: Path) -> None:
    """InputFileError naming the field when a metadata value the pipeline uses has the wrong shape.

    The reason says what the field must be, never its value (reasons go into manifest.json)."""
    for key, (types, what) in _META_FIELDS.items():
        v = meta.get(key)
        if v is None or (v == "" and key != "version"):
            continue
        ok = isinstance(v, types) and not (isinstance(v, bool) and bool not in types)
        if ok and key in ("version", "pmid"):
            ok = str(v).strip().isdigit() and int(str(v).strip()) >= (1 if key == "version" else 0)
        if ok and key in ("is_retracted", "is_manuscript") and not isinstance(v, bool):
            ok = str(v).strip().lower() in ("true", "false", "0", "1")
        if not ok:
            raise InputFileError(path, f"metadata field {key!r} is not {what} (got a {type(v).__name__}); "
                                       "the article is skipped")


def skip_reason(meta: Mapping, groups: frozenset[str]) -> str | None:
    """Why this version is not used (None: use it)."""
    if str(meta.get("is_retracted")).strip().lower() in ("true", "1"):
        return "retracted"
    group = license_group(meta.get("license_code"))
    if group not in groups:
        return f"license:{group}"
    if not meta.get("xml_url"):
        return "no_xml"
    return None


def _select(cands: Sequence[Candidate], opts: PmcOptions, cache: Path,
            quarantine: list[PrepError] | None) -> list[tuple[Candidate, dict]]:
    """Fetch metadata in batches (in PMCID order) until `limit` articles pass the filters."""
    chosen: list[tuple[Candidate, dict]] = []
    skipped: Counter[str] = Counter()
    batch = max(32, 16 * opts.http.connections)
    bar = None
    if opts.http.progress and cands:
        bar = tqdm(total=opts.limit if opts.limit is not None else len(cands), unit="article",
                   desc="pmc_oa metadata", dynamic_ncols=True)

    def one(c: Candidate) -> tuple[Candidate, dict | None]:
        try:
            return c, fetch_metadata(c, opts, cache)
        except PrepError as e:
            _report(quarantine, e)
            return c, None

    try:
        for start in range(0, len(cands), batch):
            if opts.limit is not None and len(chosen) >= opts.limit:
                break
            for c, meta in map_parallel(one, cands[start:start + batch], opts.http.connections):
                if meta is None:
                    skipped["error"] += 1
                elif (why := skip_reason(meta, opts.groups)) is not None:
                    skipped[why] += 1
                elif opts.limit is None or len(chosen) < opts.limit:
                    chosen.append((c, meta))
                    if bar is not None and opts.limit is not None:
                        bar.update(1)
                if bar is not None and opts.limit is None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    if skipped:
        log.info("pmc_oa: %d articles selected; skipped %s", len(chosen),
                 ", ".join(f"{k}={v}" for k, v in sorted(skipped.items())))
    return chosen


def _xml_job(c: Candidate, meta: Mapping, opts: PmcOptions, cache: Path) -> DownloadJob:
    try:
        key, md5 = split_s3_url(str(meta["xml_url"]), BUCKET)
    except ValueError as e:
        raise InputFileError(cache / "metadata" / f"{c.stem}.json", f"bad xml_url: {e}") from None
    name = Path(key).name
    if not name.endswith(".xml"):
        raise InputFileError(cache / "metadata" / f"{c.stem}.json", f"xml_url {key!r} is not an .xml file")
    return DownloadJob(url=object_url(opts.base_url, key), dest=cache / "articles" / f"{c.pmcid // 100_000:03d}" / name,
                       md5=md5)


def _meta_for(c: Candidate, meta: Mapping, md5: str | None) -> dict:
    pmid = meta.get("pmid")
    return {
        "pmcid": f"PMC{c.pmcid}",
        "version": int(str(meta.get("version") or c.version).strip()),
        "pmid": str(pmid).strip() if pmid not in (None, "", 0, "0") else None,
        "doi": meta.get("doi"),
        "license": normalize_license(meta.get("license_code")),
        "license_group": license_group(meta.get("license_code")),
        "is_manuscript": str(meta.get("is_manuscript")).strip().lower() in ("true", "1"),
        "md5": md5,
    }


# --------------------------------------------------------------------------- entry point


def _package_inputs(opts: PmcOptions, cache: Path, quarantine: list[PrepError] | None) -> list[Path]:
    files: list[Path] = []
    for tar in opts.packages:
        try:
            root = safe_extract(tar, extraction_dir(tar, cache / "packages"))
        except InputFileError as e:
            _report(quarantine, e)
            continue
        files.extend(article_files(root))
    return files


def resolve(src: PmcOaSource, cache_dir: Path, quarantine: list[PrepError] | None = None) -> list[InputFile]:
    opts = options(src)
    cache = Path(cache_dir) / "pmc_oa"
    inputs = [InputFile(path=p, order=i, meta={}) for i, p in enumerate(_package_inputs(opts, cache, quarantine))]
    if opts.remote and opts.limit != 0:
        warn_if_plain_http(opts.base_url)
        if opts.pmcids is not None:
            cands = listed_candidates(opts, quarantine)
        else:
            if opts.limit is None:
                log.warning("pmc_oa: no limit and no pmcids: fetching metadata for every article in the bucket "
                            "(millions of requests); set source.limit to try it first")
            cands = inventory_candidates(opts, cache, quarantine)
        chosen = _select(cands, opts, cache, quarantine)
        jobs, kept = [], []
        for c, meta in chosen:
            try:
                jobs.append(_xml_job(c, meta, opts, cache))
                kept.append((c, meta))
            except InputFileError as e:
                _report(quarantine, e)
        for (c, meta), r in zip(kept, download_all(jobs, opts.http, desc="pmc_oa articles"), strict=True):
            if r.error is not None:
                if quarantine is not None:
                    quarantine.append(r.error)
                continue
            assert r.path is not None
            inputs.append(InputFile(path=r.path, order=len(inputs), meta=_meta_for(c, meta, r.md5)))
    if not inputs:
        raise PrepError("pmc_oa: no article selected; check source.license_groups, source.pmcids and the errors above")
    return inputs
