"""`submit.py refresh` checks the append against the corpus at submission: the default prep step
(source + out_dir only) passes for a corpus built with non-default settings, which the job takes
from the corpus; a --prep override contradicting the corpus fails now, naming its key."""

from __future__ import annotations

import sys

import pytest

from tests.data_prep.conftest import FAST_PREP, abstract_text, citation, pubmed_file, run_prep

from .slurm_helpers import ROOT

sys.path.insert(0, str(ROOT / "slurm"))
import submit  # noqa: E402  (slurm/ is a folder of scripts, not a package)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("refresh_append")
    (root / "in").mkdir()
    pubmed_file(root / "in" / "pubmed26n0001.xml",
                [citation(p, f"Generated study {p} of kinase inhibitors", abstract_text(p)) for p in range(9_400_001, 9_400_013)])
    run_prep(["source=local", f"source.path={root / 'in'}", f"out_dir={root / 'corpus'}", *FAST_PREP,
              "filter.min_words=30"])
    (root / "refresh" / "c0" / "checkpoints").mkdir(parents=True)
    (root / "refresh" / "c0" / "checkpoints" / "last.ckpt").write_bytes(b"not read at submission")
    (root / "refresh" / "latest").symlink_to(root / "refresh" / "c0")
    return root


def _dry(capsys, root, *prep: str):
    rc = submit.main(["--dry-run", "--cycle=c1", *(f"--prep={o}" for o in prep), "refresh", "experiment=demo",
                      f"task.data_dir={root / 'corpus'}", f"run_dir={root / 'refresh'}"])
    out = capsys.readouterr()
    return rc, out.out.strip().splitlines(), out.err


def test_the_default_append_passes_for_a_corpus_with_non_default_settings(corpus, capsys):
    rc, lines, err = _dry(capsys, corpus)
    assert rc == 0, err
    assert lines[0].endswith(f"source=pubmed_updates source.after=corpus out_dir={corpus / 'corpus'}")


def test_a_prep_override_contradicting_the_corpus_fails_at_submission(corpus, capsys):
    rc, _, err = _dry(capsys, corpus, "filter.min_words=20")
    assert rc == 2 and err.startswith("submit: error:")
    assert "config key 'filter.min_words': is 20 here but 30 in the corpus" in err
    rc, _, err = _dry(capsys, corpus, "filter.min_words=30")  # the corpus's own value is fine
    assert rc == 0, err
