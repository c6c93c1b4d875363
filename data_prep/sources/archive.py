"""Safe extraction of `.tar.gz` article packages (legacy PMC OA bulk packages, user tarballs).

A tarball is untrusted input. Before anything is written, every member is checked: regular files
and directories only (no symlinks, hardlinks, devices or FIFOs), relative paths without `..`,
and each target must resolve inside the destination. Then `tarfile`'s `data` filter (Python
>= 3.11.4 / 3.12) extracts as a second line of defence. A hostile or corrupt tarball is rejected
as a whole with an `InputFileError` naming it and the offending member.

Extraction goes to a temporary folder that is renamed into place, and a `.extracted` marker
(size + mtime of the tarball, written inside that folder before the rename) makes a rerun skip it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath

from common.atomic import TEMP_SUFFIX
from data_prep.errors import InputFileError

ARTICLE_SUFFIXES = (".xml", ".xml.gz", ".nxml", ".nxml.gz")
_MARKER = ".extracted"


def is_tarball(path: Path) -> bool:
    return path.name.endswith((".tar.gz", ".tgz"))


def is_article_file(path: Path) -> bool:
    return path.name.endswith(ARTICLE_SUFFIXES) and not path.name.startswith(".")


def _check_member(tar_path: Path, member: tarfile.TarInfo, dest: Path) -> None:
    name = member.name
    bad = None
    if not (member.isfile() or member.isdir()):
        kind = ("symlink" if member.issym() else "hardlink" if member.islnk()
                else "device" if (member.ischr() or member.isblk()) else "fifo" if member.isfifo() else "special file")
        bad = f"contains a {kind}"
    elif not name or name.startswith(("/", "\\")) or PurePosixPath(name).is_absolute() or (
        len(name) > 1 and name[1] == ":"
    ):
        bad = "has an absolute path"
    elif ".." in PurePosixPath(name.replace("\\", "/")).parts:
        bad = "has a '..' path component"
    elif "\x00" in name:
        bad = "has a NUL byte in its name"
    else:
        target = (dest / name).resolve()
        if target != dest and dest not in target.parents:
            bad = "would be written outside the destination"
    if bad:
        raise InputFileError(tar_path, f"unsafe tarball: member {name!r} {bad}; refusing to extract it "
                                       "(repack it with plain files only)")


def extraction_dir(tar_path: Path, root: Path) -> Path:
    """A stable folder for `tar_path` under `root`: its stem plus a short hash of its absolute path."""
    tag = hashlib.sha1(str(tar_path.resolve()).encode()).hexdigest()[:8]
    stem = tar_path.name.removesuffix(".gz").removesuffix(".tar").removesuffix(".tgz")
    return root / f"{stem}-{tag}"


def safe_extract(tar_path: Path, dest: Path) -> Path:
    """Extract `tar_path` into `dest` (created atomically); skip when already extracted. Returns dest."""
    tar_path = Path(tar_path)
    if not tar_path.is_file():
        raise InputFileError(tar_path, "tarball not found")
    st = tar_path.stat()
    stamp = f"{st.st_size} {st.st_mtime_ns}"
    marker = dest / _MARKER
    if marker.is_file() and marker.read_text() == stamp:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    # A whole folder appears at once: extracted into a fresh temp folder beside `dest` (named like
    # common.atomic's temp files), then renamed. common.atomic covers single files only.
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=TEMP_SUFFIX))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 would hide the extracted folder from a group
    real_tmp = tmp.resolve()
    try:
        with tarfile.open(tar_path, "r:*") as tar:
            members = tar.getmembers()  # reads the whole index first: a truncated gzip fails here
            for m in members:
                _check_member(tar_path, m, real_tmp)
            if hasattr(tarfile, "data_filter"):
                tar.extractall(real_tmp, members=members, filter="data")
            else:  # pragma: no cover - Python < 3.11.4; the checks above already cover it
                tar.extractall(real_tmp, members=members)
        (tmp / _MARKER).write_text(stamp)
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
    except InputFileError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise InputFileError(tar_path, f"cannot read tarball ({type(e).__name__}: {e}); "
                                       "it may be truncated: download it again") from None
    return dest


def article_files(root: Path) -> list[Path]:
    """Article files (.xml, .xml.gz, .nxml, .nxml.gz) under `root`, sorted by relative path."""
    return sorted((p for p in root.rglob("*") if p.is_file() and is_article_file(p)),
                  key=lambda p: p.relative_to(root).as_posix())
