"""The fault-injection suite (marker `chaos`, part of `make test`): every file here sets
`pytestmark = pytest.mark.chaos` and injects one kind of fault into a real run (bad inputs, kill -9,
concurrent runs, a full disk, ...), then checks what the user sees and what is left on disk.
`test_prep_*.py` cover data_prep; train and eval add their own files.

Shared here: a small tmpfs for disk-full tests (root only; skipped with the reason otherwise), a
generated corpus of known good documents, and the process helpers of tests/data_prep/conftest.py.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from xml.sax.saxutils import escape

import pyarrow.parquet as pq
import pytest

from common.atomic import is_temp
from tests.data_prep.conftest import (
    FAST_PREP,
    abstract_text,
    citation,
    output_bytes,
    pubmed_file,
    write_generated_pubmed,
)

# ---- a full disk ---------------------------------------------------------------------------------


class Tmpfs:
    """A mounted tmpfs of a fixed size (`resize` to free space, as a user would delete files)."""

    def __init__(self, path: Path, size: int):
        self.path = path
        self.size = size

    def resize(self, size: int) -> None:
        _mount_cmd(["mount", "-o", f"remount,size={size}", str(self.path)])
        self.size = size

    def used(self) -> int:
        st = os.statvfs(self.path)
        return (st.f_blocks - st.f_bfree) * st.f_frsize


def _mount_cmd(args: list[str]) -> subprocess.CompletedProcess:
    r = subprocess.run(args, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise OSError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r


@pytest.fixture
def tmpfs(tmp_path) -> Iterator:
    """`tmpfs(size_bytes) -> Tmpfs` mounted under tmp_path; unmounted at the end of the test."""
    if os.geteuid() != 0:
        pytest.skip("a full disk is simulated with a small tmpfs, which needs root (mount -t tmpfs)")
    mounted: list[Tmpfs] = []

    def make(size: int) -> Tmpfs:
        path = tmp_path / f"tmpfs-{uuid.uuid4().hex[:6]}"
        path.mkdir()
        try:
            _mount_cmd(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)])
        except OSError as e:
            pytest.skip(f"cannot mount a tmpfs here ({e}); the disk-full test needs mount rights")
        mounted.append(Tmpfs(path, size))
        return mounted[-1]

    yield make
    for m in mounted:
        subprocess.run(["umount", "-l", str(m.path)], capture_output=True, timeout=30)


# ---- known good documents ----------------------------------------------------------------------

GOOD_JATS_PMCIDS = (9_700_001, 9_700_002)
EXTRA_PMIDS = tuple(range(9_600_001, 9_600_021))


def jats_article(pmcid: int, title: str, paragraphs: int = 3) -> str:
    body = "".join(f"<p>{escape(abstract_text(pmcid * 10 + i, 80))}</p>" for i in range(paragraphs))
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<article article-type="research-article"><front>'
            f'<article-meta><article-id pub-id-type="pmc">PMC{pmcid}</article-id><title-group><article-title>'
            f"{escape(title)}</article-title></title-group><abstract><p>{escape(abstract_text(pmcid, 70))}</p>"
            f"</abstract></article-meta></front><body><sec><title>Results</title>{body}</sec></body></article>\n")


def write_good_corpus(folder: Path) -> int:
    """PubMed baseline + update (40 kept), 20 more abstracts and 2 JATS articles; returns the number of
    documents a run keeps from them (all of them: the deletion and the revision are accounted for)."""
    write_generated_pubmed(folder / "pubmed")
    pubmed_file(folder / "more_abstracts.xml",
                [citation(p, f"Further study {p} on metformin", abstract_text(p, 90)) for p in EXTRA_PMIDS])
    for pmcid in GOOD_JATS_PMCIDS:
        (folder / f"PMC{pmcid}.nxml").write_text(jats_article(pmcid, f"Full text {pmcid} on imatinib"))
    return 40 + len(EXTRA_PMIDS) + len(GOOD_JATS_PMCIDS)


FAST = FAST_PREP


def check_same_as_reference(out: Path, reference: Path, context: str) -> None:
    """Byte-identical to an undisturbed run, each document once, no temp file of ours left."""
    assert output_bytes(out) == output_bytes(reference), context
    ids = pq.read_table(out / "documents", columns=["id"]).column("id").to_pylist()
    assert len(ids) == len(set(ids)), context
    assert not [p for p in out.rglob("*") if is_temp(p)], context
