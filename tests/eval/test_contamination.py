"""The contamination guard: training PMIDs from the data folder, overlap refused unless allowed."""

import pytest

from eval.contamination import check, manifest_from_info, training_pmids
from eval.errors import ContaminationError, DataFileError


def test_training_pmids_come_from_the_train_split(tiny_data):
    # 26163474 is in the documents but in the val split: not trained on.
    assert training_pmids(tiny_data["manifest"]) == {"12377809", "1"}
    assert training_pmids(tiny_data["dir"]) == {"12377809", "1"}


def test_overlap_refused_with_the_ids_listed(tiny_data):
    with pytest.raises(ContaminationError, match=r"1 pubmedqa test PMIDs .*: 12377809; .*allow_contaminated=true"):
        check("pubmedqa", ["12377809", "26163474"], tiny_data["manifest"], allow=False)
    assert check("pubmedqa", ["12377809", "26163474"], tiny_data["manifest"], allow=True) == ["12377809"]
    assert check("ddi", ["999"], tiny_data["manifest"], allow=False) == []


def test_no_manifest_is_refused_unless_allowed(tmp_path):
    with pytest.raises(ContaminationError, match="train_manifest="):
        check("bc5cdr", ["1"], None, allow=False)
    assert check("bc5cdr", ["1"], None, allow=True) == []
    with pytest.raises(DataFileError, match="training data manifest not found"):
        check("bc5cdr", ["1"], tmp_path / "manifest.json", allow=False)


def test_manifest_from_checkpoint_info(tmp_path):
    assert manifest_from_info({"data_dir": str(tmp_path)}) == tmp_path / "manifest.json"
    assert manifest_from_info({"data": {"manifest": str(tmp_path / "m.json")}}) == tmp_path / "m.json"
    assert manifest_from_info({"step": 3}) is None


def test_test_set_pmids_per_benchmark():
    from pathlib import Path

    import tasks
    from tests.conftest import shared_path

    data = Path(shared_path())

    def pmids(name):
        task = tasks.get(name)
        return task.test_set(task.paths(data)).pmids()

    assert len(pmids("pubmedqa")) == 500 and "12377809" in pmids("pubmedqa")
    assert len(pmids("bc5cdr")) == 500 and len(pmids("kd_dti")) == 1159
    assert pmids("ddi") == set() and pmids("hoc") == set()  # no PMIDs in these files
