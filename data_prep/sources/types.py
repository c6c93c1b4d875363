"""`InputFile`: what a source hands to the pipeline (re-exported by `data_prep.sources`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class InputFile:
    path: Path  # local file to parse (.xml, .xml.gz, .nxml, .nxml.gz)
    order: int  # load order (later wins): PubMed NCBI file number; PMC/JATS after, by position
    meta: dict = field(default_factory=dict)  # PMC: license, pmid, pmcid, version, md5, ...; {} for plain files
