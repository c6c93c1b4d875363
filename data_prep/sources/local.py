"""Files already on disk: `source.path` is a directory (searched recursively) or a glob.

Accepted: `.xml`, `.xml.gz`, `.nxml`, `.nxml.gz`, and `.tar.gz`/`.tgz` packages (extracted safely
into the cache). Order is deterministic: files named like NCBI's (`pubmed26n0001.xml.gz`,
`medline16n0902_excerpt.xml.gz`) first in (year, file number) order, as PubMed's load order requires; then
everything else sorted by path (a tarball's members sort under the tarball's own path).
"""

from __future__ import annotations

import glob
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path

from data_prep.errors import ConfigError, InputFileError, PrepError
from data_prep.sources.archive import article_files, extraction_dir, is_article_file, is_tarball, safe_extract
from data_prep.sources.types import InputFile

log = logging.getLogger(__name__)

KEYS = frozenset({"path"})
_GLOB_CHARS = set("*?[")
# NCBI names, also with a suffix a user or excerpting tool added (`medline16n0902_excerpt.xml.gz`).
_NCBI_PREFIX_RE = re.compile(r"^(?:pubmed|medline)(?P<yy>\d{2})n(?P<num>\d{4})(?!\d)")


def _target(cfg: Mapping) -> tuple[str, bool]:
    raw = cfg.get("path")
    if not isinstance(raw, (str, os.PathLike)) or not str(raw).strip() or str(raw) == "???":
        raise ConfigError("source.path", "is required: a directory or a glob of .xml/.xml.gz/.nxml/.nxml.gz/.tar.gz files")
    path = os.path.expanduser(str(raw))
    is_glob = any(ch in _GLOB_CHARS for ch in path)
    if not is_glob and not os.path.exists(path):
        raise ConfigError("source.path", f"{path} does not exist; point it at a directory or a glob of article files")
    return path, is_glob


def validate(cfg: Mapping) -> None:
    unknown = sorted(set(cfg) - KEYS - {"name"})
    if unknown:
        raise ConfigError(f"source.{unknown[0]}", "unknown key for source 'local'; allowed: path")
    _target(cfg)


def _wanted(p: Path) -> bool:
    return p.is_file() and (is_article_file(p) or is_tarball(p))


def _candidates(path: str, is_glob: bool) -> list[Path]:
    if is_glob:
        found = [Path(p) for p in glob.glob(path, recursive=True)]
        files = [p for p in found if _wanted(p)]
        for d in (p for p in found if p.is_dir()):
            files.extend(p for p in d.rglob("*") if _wanted(p))
    elif os.path.isdir(path):
        files = [p for p in Path(path).rglob("*") if _wanted(p)]
    else:
        files = [Path(path)] if _wanted(Path(path)) else []
        if not files:
            raise ConfigError("source.path", f"{path} is not an .xml/.xml.gz/.nxml/.nxml.gz/.tar.gz file")
    if not files:
        raise ConfigError("source.path", f"{path} matches no .xml/.xml.gz/.nxml/.nxml.gz/.tar.gz file")
    return sorted(set(files))


def order_key(display: str) -> tuple:
    """PubMed-named files first by (year, number), then the rest by path."""
    m = _NCBI_PREFIX_RE.match(Path(display).name)
    if m is not None:
        return (0, int(m.group("yy")), int(m.group("num")), display)
    return (1, 0, 0, display)


def resolve(cfg: Mapping, cache_dir: Path, quarantine: list[PrepError] | None = None) -> list[InputFile]:
    validate(cfg)
    path, is_glob = _target(cfg)
    entries: list[tuple[str, Path, dict]] = []  # (sort path, file, meta)
    for f in _candidates(path, is_glob):
        if is_tarball(f):
            try:
                root = safe_extract(f, extraction_dir(f, Path(cache_dir) / "local" / "packages"))
            except InputFileError as e:
                log.error("%s", e)
                if quarantine is not None:
                    quarantine.append(e)
                continue
            for member in article_files(root):
                rel = member.relative_to(root).as_posix()
                entries.append((f"{f.as_posix()}/{rel}", member, {"package": str(f), "member": rel}))
        else:
            entries.append((f.as_posix(), f, {}))
    if not entries:
        raise PrepError(f"source.path {path}: no usable article file (see the errors above)")
    entries.sort(key=lambda e: order_key(e[0]))
    return [InputFile(path=p, order=i, meta=meta) for i, (_, p, meta) in enumerate(entries)]
