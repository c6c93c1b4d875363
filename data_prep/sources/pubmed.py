"""PubMed baseline and update files from NCBI (`https://ftp.ncbi.nlm.nih.gov/pubmed/...`).

The directory is an Apache-style HTML index; file names are `pubmed{YY}n{NNNN}.xml.gz`, each with
a sibling `.md5` holding `MD5(pubmed26n0001.xml.gz)= <hex>`. Update files continue the baseline's
numbers (2026: baseline n0001-n1334, first update n1335), so the NCBI file number is the load order
for both: `InputFile.order` is that number, and a baseline run and an updates run sort together.
`source.after=N` keeps the files numbered above N (an append resolves `after=corpus` to the
corpus's newest file number first).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from common.config import ConfigError
from data_prep.errors import PrepError
from data_prep.sources.config import (
    AFTER_CORPUS,
    PubmedSource,
    http_url,
    in_ranges,
    parse_after,
    parse_file_range,
)
from data_prep.sources.download import DownloadJob, download_all, fetch_bytes, warn_if_plain_http
from data_prep.sources.types import InputFile

log = logging.getLogger(__name__)

# PubMed/MEDLINE names as NCBI writes them; also used to order local files.
NCBI_NAME_RE = re.compile(r"^(?:pubmed|medline)(?P<yy>\d{2})n(?P<num>\d{4})\.xml(?:\.gz)?$")
_LISTING_RE = re.compile(r'href="(?:[^"]*/)?(pubmed\d{2}n\d{4}\.xml\.gz)"')


@dataclass(frozen=True, order=True)
class PubmedFile:
    year: int  # 2-digit year of the release (26 for the 2026 baseline)
    number: int
    name: str


def parse_listing(html: str) -> list[PubmedFile]:
    """File names linked from NCBI's HTML index, sorted by (year, number), duplicates removed."""
    files = set()
    for name in _LISTING_RE.findall(html):
        m = NCBI_NAME_RE.match(name)
        assert m is not None  # the listing regex only matches NCBI names
        files.add(PubmedFile(int(m.group("yy")), int(m.group("num")), name))
    return sorted(files)


def resolve(src: PubmedSource, cache_dir: Path, quarantine: list[PrepError] | None = None) -> list[InputFile]:
    name = src.name
    base_url = http_url(src.base_url)
    ranges = parse_file_range(src.files)
    after = parse_after(src.after)
    if after == AFTER_CORPUS:  # the append driver replaces it with the corpus's newest file number
        raise ConfigError("source.after", f"'{AFTER_CORPUS}' needs append=true and a finished corpus in out_dir")
    http = src.http()
    warn_if_plain_http(base_url)

    listing = parse_listing(fetch_bytes(base_url, http, max_bytes=64 << 20).decode("utf-8", "replace"))
    if not listing:
        raise PrepError(f"{base_url}: the listing links no pubmedYYnNNNN.xml.gz file; check source.base_url")
    years = sorted({f.year for f in listing})
    if len(years) > 1:
        # Mid-reload NCBI may briefly show two releases; a corpus must not mix them silently.
        log.warning("%s lists files of several releases (%s); keeping the newest, %02d",
                    base_url, ", ".join(f"{y:02d}" for y in years), years[-1])
        listing = [f for f in listing if f.year == years[-1]]
    selected = [f for f in listing if in_ranges(f.number, ranges)]
    if after is not None:
        selected = [f for f in selected if f.number > after]
        if not selected:  # nothing newer yet: not an error (an append then has nothing to do)
            log.info("%s: no file numbered above %d (%s lists up to n%04d)", name, after, base_url,
                     listing[-1].number)
            return []
    if not selected:
        raise ConfigError("source.files", f"{src.files!r} selects no file: {base_url} has "
                                          f"n{listing[0].number:04d}-n{listing[-1].number:04d}")

    dest_dir = Path(cache_dir) / name
    jobs = [DownloadJob(url=base_url + f.name, dest=dest_dir / f.name, md5_url=base_url + f.name + ".md5")
            for f in selected]
    results = download_all(jobs, http, desc=name)
    inputs: list[InputFile] = []
    for f, r in zip(selected, results, strict=True):
        if r.error is not None:
            if quarantine is not None:
                quarantine.append(r.error)
            continue
        assert r.path is not None
        inputs.append(InputFile(path=r.path, order=f.number, meta={"md5": r.md5, "file_number": f.number}))
    failed = len(selected) - len(inputs)
    if failed:
        log.error("%s: %d of %d files failed (listed above); the other %d are ready",
                  name, failed, len(selected), len(inputs))
    if not inputs:
        raise PrepError(f"{name}: all {len(selected)} selected files failed to download; first error: "
                        f"{results[0].error}")
    return inputs
