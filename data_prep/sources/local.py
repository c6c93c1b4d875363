"""Files already on disk: `source.path` is a directory (searched recursively), a glob, or a list
of them (one run over PubMed XML + PMC + a JSONL corpus; a file reached twice is read once).

Accepted: `.xml`, `.xml.gz`, `.nxml`, `.nxml.gz`, `.tar.gz`/`.tgz` packages (extracted safely
into the cache), and users' own corpora as `.jsonl`, `.jsonl.gz`, `.parquet` records
(data_prep/parse/records_file.py). Order is deterministic: files named like NCBI's (`pubmed26n0001.xml.gz`,
`medline16n0902_excerpt.xml.gz`) first in (year, file number) order, as PubMed's load order requires; then
everything else sorted by path (a tarball's members sort under the tarball's own path).

Symbolic links: by default (`source.follow_symlinks=false`) a link whose target lies outside
`source.path` (the directory, or a glob's fixed leading folder) is not read: it is reported as
quarantined with its target, so a stray link cannot pull in a file from elsewhere on the machine.
Links that stay inside are read as usual (a linked directory inside is not walked twice). A single
file named by `source.path` is read even when it is a link: naming it is explicit.
"""

from __future__ import annotations

import glob
import logging
import os
import re
from pathlib import Path

from common.config import ConfigError
from data_prep.errors import InputFileError, PrepError
from data_prep.parse.records_file import is_record_file
from data_prep.sources.archive import article_files, extraction_dir, is_article_file, is_tarball, safe_extract
from data_prep.sources.config import LOCAL_KINDS, LocalSource, local_targets
from data_prep.sources.types import InputFile

log = logging.getLogger(__name__)

# NCBI names, also with a suffix a user or excerpting tool added (`medline16n0902_excerpt.xml.gz`).
_NCBI_PREFIX_RE = re.compile(r"^(?:pubmed|medline)(?P<yy>\d{2})n(?P<num>\d{4})(?!\d)")


def _wanted(p: Path) -> bool:
    return p.is_file() and (is_article_file(p) or is_tarball(p) or is_record_file(p))


def _glob_root(pattern: str) -> Path:
    """The fixed leading folder of a glob (`/data/**/*.xml` -> `/data`)."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts:
        if any(ch in part for ch in "*?["):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _walk(root: Path, follow: bool, outside: list[Path]) -> list[Path]:
    """Files under `root`. Linked directories are walked only with `follow` (each real folder once);
    without it, a link to a directory outside `root` is appended to `outside` (to be reported)."""
    files: list[Path] = []
    seen: set[str] = set()
    root_real = Path(os.path.realpath(root))
    for dirpath, dirnames, filenames in os.walk(root, followlinks=follow):
        real = os.path.realpath(dirpath)
        if real in seen:  # a link loop, or a folder reached twice through links
            dirnames[:] = []
            continue
        seen.add(real)
        for d in dirnames:
            link = Path(dirpath) / d
            if not follow and link.is_symlink() and not _inside(link, root_real):
                outside.append(link)
        files.extend(Path(dirpath) / f for f in filenames)
    return files


def _inside(p: Path, root_real: Path) -> bool:
    return Path(os.path.realpath(p)).is_relative_to(root_real)


def _candidates(path: str, is_glob: bool, follow: bool) -> tuple[list[Path], list[Path]]:
    """(article files and tarballs to read, links to outside `source.path` that are not followed)."""
    outside: list[Path] = []
    if is_glob:
        root = _glob_root(path)
        found = [Path(p) for p in glob.glob(path, recursive=True)]
        files = [p for p in found if not p.is_dir()]
        for d in (p for p in found if p.is_dir()):
            files.extend(_walk(d, follow, outside))
    elif os.path.isdir(path):
        root = Path(path)
        files = _walk(root, follow, outside)
    else:
        files = [Path(path)] if _wanted(Path(path)) else []
        if not files:
            raise ConfigError("source.path", f"{path} is not a {LOCAL_KINDS} file")
        return files, []
    files = [p for p in files if _wanted(p)]
    if not follow:
        root_real = Path(os.path.realpath(root))
        outside += [p for p in files if not _inside(p, root_real)]
        files = [p for p in files if _inside(p, root_real)]
    if not files and not outside:
        raise ConfigError("source.path", f"{path} matches no {LOCAL_KINDS} file")
    by_real: dict[str, Path] = {}  # a file reached directly and through links is read once, by its own path
    for p in sorted(set(files)):
        real = os.path.realpath(p)
        if real not in by_real or os.path.abspath(p) == real:
            by_real[real] = p
    return sorted(by_real.values()), sorted(set(outside))


def order_key(display: str) -> tuple:
    """PubMed-named files first by (year, number), then the rest by path."""
    m = _NCBI_PREFIX_RE.match(Path(display).name)
    if m is not None:
        return (0, int(m.group("yy")), int(m.group("num")), display)
    return (1, 0, 0, display)


def resolve(src: LocalSource, cache_dir: Path, quarantine: list[PrepError] | None = None) -> list[InputFile]:
    targets = local_targets(src.path)
    entries: list[tuple[str, Path, dict]] = []  # (sort path, file, meta)
    files: list[Path] = []
    outside: list[Path] = []
    seen: set[str] = set()
    for path, is_glob in targets:
        found, out = _candidates(path, is_glob, src.follow_symlinks)
        files += [f for f in found if os.path.realpath(f) not in seen]  # listed twice (a dir and a file in it)
        seen.update(os.path.realpath(f) for f in found)
        outside += out
    path = ", ".join(p for p, _ in targets)
    for link in outside:
        err = InputFileError(link, f"symbolic link to {os.path.realpath(link)}, outside source.path: not read "
                                   "(set source.follow_symlinks=true to read it)")
        log.warning("%s", err)
        if quarantine is not None:
            quarantine.append(err)
    for f in files:
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
        first = f"; first: {quarantine[0]}" if quarantine else " (see the errors above)"
        raise PrepError(f"source.path {path}: no usable article file{first}")
    entries.sort(key=lambda e: order_key(e[0]))
    return [InputFile(path=p, order=i, meta=meta) for i, (_, p, meta) in enumerate(entries)]
