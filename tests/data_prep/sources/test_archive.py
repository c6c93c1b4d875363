"""Safe tarball extraction: hostile archives (generated here) are refused as a whole."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from data_prep.errors import InputFileError
from data_prep.sources.archive import article_files, extraction_dir, safe_extract

ARTICLE = b'<?xml version="1.0"?><article><front><article-meta><title-group><article-title>T</article-title></title-group></article-meta></front></article>'


def make_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return path


def file_member(name: str, data: bytes = ARTICLE) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def special_member(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def test_good_package_is_extracted_and_listed(tmp_path):
    tar = make_tar(tmp_path / "oa_comm_xml.PMC000xxxxxx.baseline.2025-06-01.tar.gz", [
        file_member("PMC000xxxxxx/PMC1.xml"),
        file_member("PMC000xxxxxx/PMC2.nxml"),
        file_member("PMC000xxxxxx/readme.txt", b"not an article"),
        file_member("PMC000xxxxxx/sub/PMC3.nxml.gz", b"\x1f\x8b"),
    ])
    dest = extraction_dir(tar, tmp_path / "cache")
    assert safe_extract(tar, dest) == dest
    files = [p.relative_to(dest).as_posix() for p in article_files(dest)]
    assert files == ["PMC000xxxxxx/PMC1.xml", "PMC000xxxxxx/PMC2.nxml", "PMC000xxxxxx/sub/PMC3.nxml.gz"]
    assert (dest / "PMC000xxxxxx/PMC1.xml").read_bytes() == ARTICLE


def test_extraction_is_skipped_when_done_and_redone_when_the_tarball_changes(tmp_path):
    tar = make_tar(tmp_path / "p.tar.gz", [file_member("a.xml")])
    dest = extraction_dir(tar, tmp_path / "cache")
    safe_extract(tar, dest)
    (dest / "a.xml").write_bytes(b"edited")  # a skipped re-extraction leaves this in place
    safe_extract(tar, dest)
    assert (dest / "a.xml").read_bytes() == b"edited"
    make_tar(tar, [file_member("b.xml")])
    safe_extract(tar, dest)
    assert [p.name for p in article_files(dest)] == ["b.xml"]


@pytest.mark.parametrize(
    "member, why",
    [
        (file_member("/etc/evil.xml"), "absolute path"),
        (file_member("../evil.xml"), "'..'"),
        (file_member("ok/../../evil.xml"), "'..'"),
        (special_member("link.xml", tarfile.SYMTYPE, "/etc/passwd"), "symlink"),
        (special_member("rel.xml", tarfile.SYMTYPE, "../../outside"), "symlink"),
        (special_member("hard.xml", tarfile.LNKTYPE, "/etc/passwd"), "hardlink"),
        (special_member("dev", tarfile.CHRTYPE), "device"),
        (special_member("blk", tarfile.BLKTYPE), "device"),
        (special_member("pipe", tarfile.FIFOTYPE), "fifo"),
    ],
)
def test_hostile_members_reject_the_whole_tarball(tmp_path, member, why):
    tar = make_tar(tmp_path / "hostile.tar.gz", [file_member("fine.xml"), member])
    dest = tmp_path / "cache" / "hostile"
    with pytest.raises(InputFileError, match=rf"hostile\.tar\.gz: unsafe tarball: member .*{why}") as ei:
        safe_extract(tar, dest)
    assert "\n" not in str(ei.value)
    assert not dest.exists()  # nothing half-extracted, not even the harmless member
    assert list((tmp_path / "cache").iterdir()) == []  # and no temp folder left behind
    assert not (tmp_path / "evil.xml").exists() and not (tmp_path.parent / "evil.xml").exists()


def test_symlinked_directory_then_file_through_it_is_refused(tmp_path):
    # The classic two-step escape: a symlink dir, then a regular file "inside" it.
    tar = make_tar(tmp_path / "twostep.tar.gz", [
        special_member("d", tarfile.SYMTYPE, str(tmp_path / "outside")),
        file_member("d/evil.xml"),
    ])
    with pytest.raises(InputFileError, match="symlink"):
        safe_extract(tar, tmp_path / "cache" / "x")
    assert not (tmp_path / "outside").exists()


def test_truncated_tarball_is_a_clear_error(tmp_path):
    tar = make_tar(tmp_path / "t.tar.gz", [file_member(f"a{i}.xml", ARTICLE * 200) for i in range(5)])
    data = tar.read_bytes()
    tar.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputFileError, match=r"t\.tar\.gz: cannot read tarball .*truncated"):
        safe_extract(tar, tmp_path / "cache" / "t")
    assert not (tmp_path / "cache" / "t").exists()


def test_missing_tarball(tmp_path):
    with pytest.raises(InputFileError, match="tarball not found"):
        safe_extract(tmp_path / "nope.tar.gz", tmp_path / "x")


def test_extraction_dir_is_stable_and_distinct(tmp_path):
    a, b = tmp_path / "a" / "p.tar.gz", tmp_path / "b" / "p.tar.gz"
    assert extraction_dir(a, tmp_path) == extraction_dir(a, tmp_path)
    assert extraction_dir(a, tmp_path) != extraction_dir(b, tmp_path)
    assert extraction_dir(a, tmp_path).name.startswith("p-")
