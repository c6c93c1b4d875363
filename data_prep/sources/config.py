"""The schemas of `conf/source/*.yaml` and the checks a type cannot express.

One dataclass per source, registered in Hydra's ConfigStore (by `data_prep.config`) as the schema
of its YAML, so OmegaConf rejects a misspelt key, a wrong type or a license group outside its set
while composing. Every default is written here once; the YAML files only pick the schema.
`check_source` then checks what a type cannot say (URLs, ranges, paths, PMCIDs); errors are
`ConfigError("source.<key>", reason)`, raised before any download or extraction.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from omegaconf import MISSING

import demo_corpus
from common.config import ConfigError, check_range, to_plain
from data_prep.sources.archive import is_tarball
from data_prep.sources.download import MAX_CONNECTIONS, HttpConfig
from data_prep.structured import typed

PUBMED_BASELINE_URL = "https://ftp.ncbi.nlm.nih.gov/pubmed/baseline/"
PUBMED_UPDATES_URL = "https://ftp.ncbi.nlm.nih.gov/pubmed/updatefiles/"
PMC_OA_URL = "https://pmc-oa-opendata.s3.amazonaws.com/"
INVENTORY_STAMP_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}-\d{2}Z")


@dataclass
class SourceConfig:
    """Base of every source schema; `name` is set by the group (`source=<name>`)."""

    name: str = MISSING


@dataclass
class LocalSource(SourceConfig):
    """Files already on disk (docs/sources.md)."""

    name: str = "local"
    # A directory (searched recursively) or a glob, e.g. /data/pubmed/*.xml.gz or '/data/**/*.nxml',
    # or a list of them (one run over several inputs: source.path='[pubmed/,pmc/,corpus.jsonl.gz]').
    # Accepted: .xml .xml.gz .nxml .nxml.gz, .tar.gz/.tgz packages (extracted safely into the cache),
    # and users' own corpora as .jsonl .jsonl.gz .parquet records with `id` and `text`
    # (data_prep/parse/records_file.py). Relative paths are taken from the working directory. Required.
    path: Any = MISSING
    # false: a symbolic link whose target lies outside source.path is not read (it is listed as
    # quarantined, with its target); true: read it (and descend into linked directories).
    follow_symlinks: bool = False


@dataclass
class DemoSource(SourceConfig):
    """The embedded demo corpus (demo_corpus/, docs/demo.md); the same values give the same files,
    and the demo PubMedQA set is generated from the same values."""

    name: str = "demo"
    seed: int = demo_corpus.SEED
    n_abstracts: int = demo_corpus.N_ABSTRACTS  # research abstracts (at least 200)
    n_fulltext: int = demo_corpus.N_FULLTEXT  # JATS full texts (at least 4)


@dataclass
class HttpSource(SourceConfig):
    """Network behaviour of the downloading sources; the defaults are `HttpConfig`'s."""

    # Parallel downloads. NCBI publishes no limit but blocks IPs with "high rates of access".
    connections: int = HttpConfig.connections
    retries: int = HttpConfig.retries  # extra attempts per request (connection errors, 5xx/429, short bodies)
    backoff_s: float = HttpConfig.backoff_s  # first retry waits ~backoff_s (x0.5-1.5 jitter), doubling
    backoff_max_s: float = HttpConfig.backoff_max_s
    timeout_s: float = HttpConfig.timeout_s  # per socket operation, not per file
    progress: bool = HttpConfig.progress  # tqdm bar with bytes/s and ETA

    def http(self) -> HttpConfig:
        return HttpConfig(connections=self.connections, retries=self.retries, backoff_s=self.backoff_s,
                          backoff_max_s=self.backoff_max_s, timeout_s=self.timeout_s, progress=self.progress)


@dataclass
class PubmedSource(HttpSource):
    """NCBI's PubMed files: an Apache-style index of pubmed{YY}n{NNNN}.xml.gz + .md5 siblings."""

    base_url: str = MISSING
    # NCBI file numbers to fetch: all | 5 | 1-10 | '1-3,7' (quote comma lists on the Hydra command line).
    files: Any = "all"
    # Only files numbered above this: null (no bound) | a file number | `corpus`: the highest NCBI
    # file number already in the corpus in out_dir (with append=true: "everything it lacks").
    after: Any = None


@dataclass
class PubmedBaselineSource(PubmedSource):
    name: str = "pubmed_baseline"
    base_url: str = PUBMED_BASELINE_URL


@dataclass
class PubmedUpdatesSource(PubmedSource):
    """Daily update files; their numbers continue the baseline's (2026: the first is n1335)."""

    name: str = "pubmed_updates"
    base_url: str = PUBMED_UPDATES_URL


class LicenseGroup(str, Enum):
    """The legacy oa_comm / oa_noncomm / oa_other split, applied to PMC's per-version license_code."""

    commercial = "commercial"  # CC0, CC BY, CC BY-SA, CC BY-ND
    noncommercial = "noncommercial"  # CC BY-NC(-SA/-ND)
    other = "other"  # TDM (author manuscripts), custom, none


@dataclass
class PmcOaSource(HttpSource):
    """PMC Open Access full text from the PMC Article Datasets bucket s3://pmc-oa-opendata (HTTPS)."""

    name: str = "pmc_oa"
    base_url: str = PMC_OA_URL
    license_groups: list[LicenseGroup] = field(default_factory=lambda: [LicenseGroup.commercial])
    # null: every article of the newest daily inventory (millions of metadata requests; set a limit).
    # Or PMCIDs like [PMC10009402, PMC11370360]: their versions are listed with ListObjectsV2.
    pmcids: list[str] | None = None
    limit: int | None = None  # stop after this many selected articles (in PMCID order); null: no limit
    # Pin an inventory snapshot, e.g. '2026-01-18T01-00Z' (NCBI keeps them 30 days); null: newest.
    inventory: str | None = None
    # Local legacy .tar.gz packages (oa_comm_xml.*.tar.gz), extracted safely; they load before the S3
    # articles, so current versions win.
    packages: list[str] = field(default_factory=list)
    remote: bool = True  # false: read only `packages`, no network


SOURCE_SCHEMAS: dict[str, type[SourceConfig]] = {
    "pubmed_baseline": PubmedBaselineSource,
    "pubmed_updates": PubmedUpdatesSource,
    "pmc_oa": PmcOaSource,
    "local": LocalSource,
    "demo": DemoSource,
}
SOURCE_NAMES = tuple(SOURCE_SCHEMAS)


def source_schema(name: Any) -> type[SourceConfig]:
    if name not in SOURCE_SCHEMAS:
        raise ConfigError("source.name", f"must be one of {', '.join(SOURCE_NAMES)}, got {name!r}")
    return SOURCE_SCHEMAS[name]


def source_config(cfg: SourceConfig | Mapping) -> SourceConfig:
    """A source config as its typed dataclass, checked: a dataclass is checked as it is; a mapping
    (a plain dict or a DictConfig) is first typed against the schema its `name` picks."""
    if not isinstance(cfg, SourceConfig):
        values = to_plain(cfg)
        if not isinstance(values, Mapping) or not values.get("name"):
            raise ConfigError("source", "choose a source: source=local source.path=<dir>, source=demo, ...")
        cfg = typed(source_schema(values["name"]), values, "source")
    check_source(cfg)
    return cfg


# ---- the checks a type cannot express --------------------------------------------------------


def check_source(src: SourceConfig) -> None:
    """Raise ConfigError("source.<key>") for a value outside what the source can use."""
    expected = source_schema(src.name)
    if type(src) is not expected:
        raise ConfigError("source.name", f"{src.name!r} is set by the source group: use source={src.name}")
    if isinstance(src, HttpSource):
        check_range("source.connections", src.connections, 1, MAX_CONNECTIONS)
        check_range("source.retries", src.retries, 0, 50)
        check_range("source.backoff_s", src.backoff_s, 0)
        check_range("source.backoff_max_s", src.backoff_max_s, 0)
        check_range("source.timeout_s", src.timeout_s, 0, lo_open=True)
        http_url(src.base_url)
    if isinstance(src, PubmedSource):
        parse_file_range(src.files)
        parse_after(src.after)
    elif isinstance(src, PmcOaSource):
        if not src.license_groups:
            raise ConfigError("source.license_groups", f"must be a non-empty list of {[g.value for g in LicenseGroup]}")
        pmcid_numbers(src.pmcids)
        check_range("source.limit", src.limit, 0, allow_none=True)
        package_paths(src.packages)
        if not src.remote and not src.packages:
            raise ConfigError("source.remote", "is false but source.packages is empty: nothing to read")
        if src.inventory is not None and not INVENTORY_STAMP_RE.fullmatch(src.inventory):
            raise ConfigError("source.inventory",
                              f"must be null (newest) or a stamp like '2026-01-18T01-00Z', got {src.inventory!r}")
    elif isinstance(src, LocalSource):
        local_targets(src.path)
    elif isinstance(src, DemoSource):
        demo_corpus.check_args(src.seed, src.n_abstracts, src.n_fulltext)


def http_url(value: str, key: str = "source.base_url") -> str:
    """The URL with a trailing slash; ConfigError unless it is http(s), without credentials or query.

    The sources read public servers anonymously. A URL that carried a password or a token would be
    written to out_dir/.hydra/ and manifest.json, so it is refused here, before anything is written
    (and the error does not repeat it)."""
    if not isinstance(value, str) or not re.match(r"^https?://[^/\s]+", value):
        raise ConfigError(key, f"must be an http(s) URL, got {redact_url(value)!r}")
    parts = urlsplit(value)
    if parts.username is not None or parts.password is not None:
        raise ConfigError(key, "must not hold credentials (user:password@): they would be written to out_dir/.hydra "
                               "and manifest.json; the NCBI and PMC servers need none")
    if parts.query or parts.fragment:
        raise ConfigError(key, "must be a plain folder URL without ?query or #fragment (a token there would be "
                               "written to out_dir/.hydra and manifest.json)")
    return value if value.endswith("/") else value + "/"


def redact_url(value: Any) -> Any:
    """`value` with any `user:password@` of a URL replaced by `***@` (for error messages)."""
    return re.sub(r"(?i)([a-z][a-z0-9+.\-]*://)[^/@\s]+@", r"\1***@", value) if isinstance(value, str) else value


LOCAL_KINDS = ".xml/.xml.gz/.nxml/.nxml.gz/.tar.gz/.jsonl/.jsonl.gz/.parquet"


def local_targets(raw: Any) -> list[tuple[str, bool]]:
    """`source.path` as a list of (path, is_glob): one path or glob, or a non-empty list of them."""
    raw = to_plain(raw) if not isinstance(raw, (str, os.PathLike)) else raw
    if isinstance(raw, (list, tuple)):
        if not raw:
            raise ConfigError("source.path", f"is an empty list; give at least one directory, glob or {LOCAL_KINDS} file")
        targets = [local_target(p) for p in raw]
        seen = [p for p, _ in targets]
        dup = next((p for p in seen if seen.count(p) > 1), None)
        if dup is not None:
            raise ConfigError("source.path", f"lists {dup} twice")
        return targets
    return [local_target(raw)]


def local_target(raw: Any) -> tuple[str, bool]:
    """(path with ~ expanded, whether it is a glob) of `source.path`; ConfigError when it is unusable."""
    if not isinstance(raw, (str, os.PathLike)) or not str(raw).strip() or str(raw) == "???":
        raise ConfigError("source.path", f"is required: a directory or a glob of {LOCAL_KINDS} files, or a list of them")
    path = os.path.expanduser(str(raw))
    is_glob = any(ch in "*?[" for ch in path)
    if not is_glob and not os.path.exists(path):
        raise ConfigError("source.path", f"{path} does not exist; point it at a directory or a glob of article files")
    return path, is_glob


def pmcid_number(value: object) -> int:
    m = re.fullmatch(r"(?:PMC)?(\d+)", str(value).strip(), flags=re.IGNORECASE)
    if m is None or isinstance(value, bool) or int(m.group(1)) < 1:
        raise ConfigError("source.pmcids", f"{value!r} is not a PMCID (expected like 'PMC1234567')")
    return int(m.group(1))


def pmcid_numbers(values: list[str] | None) -> tuple[int, ...] | None:
    """`source.pmcids` as numbers, duplicates removed (order kept); None stays None."""
    if values is None:
        return None
    if not values:
        raise ConfigError("source.pmcids", "must be a non-empty list like ['PMC1234567'] or null")
    return tuple(dict.fromkeys(pmcid_number(p) for p in values))


def package_paths(values: list[str]) -> tuple[Path, ...]:
    out = []
    for p in values:
        path = Path(str(p)).expanduser()
        if not path.is_file():
            raise ConfigError("source.packages", f"{path} does not exist (expected a local .tar.gz package)")
        if not is_tarball(path):
            raise ConfigError("source.packages", f"{path} is not a .tar.gz/.tgz package")
        out.append(path)
    return tuple(out)


def parse_file_range(value: Any, key: str = "source.files") -> list[tuple[int, int]] | None:
    """`all` -> None; `5`, `1-10`, `1-3,7` (or a list of those) -> inclusive (lo, hi) ranges.

    On the Hydra command line quote a comma list (`source.files='1-3,7'`): an unquoted comma
    means a multirun sweep there.
    """
    value = to_plain(value)
    if value is None or (isinstance(value, str) and value.strip().lower() == "all"):
        return None
    parts: list[Any]
    if isinstance(value, (list, tuple)):
        parts = list(value)
    elif isinstance(value, str):
        parts = [p for p in value.split(",")]
    else:
        parts = [value]
    ranges: list[tuple[int, int]] = []
    for part in parts:
        if isinstance(part, bool):
            raise ConfigError(key, f"expected 'all', a number, 'a-b' or a comma list, got {value!r}")
        if isinstance(part, int):
            lo = hi = part
        else:
            m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", str(part))
            if m is None:
                raise ConfigError(key, f"expected 'all', a number, 'a-b' or a comma list like '1-3,7', got {value!r}")
            lo = int(m.group(1))
            hi = int(m.group(2)) if m.group(2) is not None else lo
        if lo < 1 or hi < lo:
            raise ConfigError(key, f"range {lo}-{hi} is empty or starts below 1 (NCBI files start at 0001)")
        ranges.append((lo, hi))
    if not ranges:
        raise ConfigError(key, "is empty; use 'all' or a range like '1-10'")
    return ranges


AFTER_CORPUS = "corpus"


def parse_after(value: Any, key: str = "source.after") -> int | str | None:
    """`source.after`: None, a file number (int), or AFTER_CORPUS (resolved by the append)."""
    value = to_plain(value)
    if value is None or value == AFTER_CORPUS:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise ConfigError(key, f"expected null, a file number like 1334, or '{AFTER_CORPUS}' (the newest file of the "
                           f"corpus in out_dir, with append=true), got {value!r}")


def in_ranges(n: int, ranges: list[tuple[int, int]] | None) -> bool:
    return ranges is None or any(lo <= n <= hi for lo, hi in ranges)
