"""Fine-tuning data in BioGPT's formats: loss on target tokens only; real task files parse."""

from __future__ import annotations

import pytest

from tests.conftest import shared_path

from .conftest import compose, read_losses, tiny_overrides, write_pubmedqa


@pytest.fixture(scope="module")
def tok(token_data):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(token_data / "tokenizer" / "tokenizer.json"))


def test_pubmedqa_format_and_label_masking(tmp_path, tok):
    from train.finetune_data import IGNORE_INDEX, load_examples, tokenize_dataset

    ds = load_examples("pubmedqa", write_pubmedqa(tmp_path / "qa.json", 5))
    row = ds[0]
    from tasks.pubmedqa import ANSWER_PREFIX

    assert row["source"].startswith("question: Does ") and " context: " in row["source"]
    assert row["target"] == f"{ANSWER_PREFIX} {row['label']}."
    out = tokenize_dataset(ds, tok, max_len=512, eos_id=2)
    ids, labels = out[0]["input_ids"], out[0]["labels"]
    assert len(ids) == len(labels)
    supervised = [y for y in labels if y != IGNORE_INDEX]
    target_ids = tok.encode(" " + row["target"], add_special_tokens=False).ids
    assert supervised == target_ids + [2]  # exactly the target and the final EOS
    n_src = len(tok.encode(row["source"], add_special_tokens=False).ids)
    assert labels[: n_src - 1] == [IGNORE_INDEX] * (n_src - 1)
    # labels are inputs shifted by one wherever supervised
    for t in range(len(ids) - 1):
        if labels[t] != IGNORE_INDEX:
            assert labels[t] == ids[t + 1]


def test_truncation_keeps_the_target(tmp_path, tok):
    from train.finetune_data import IGNORE_INDEX, load_examples, tokenize_dataset

    out = tokenize_dataset(load_examples("pubmedqa", write_pubmedqa(tmp_path / "qa.json", 3)), tok, 24, eos_id=2)
    for r in out:
        assert len(r["input_ids"]) <= 24
        assert r["labels"][-1] == 2 and sum(y != IGNORE_INDEX for y in r["labels"]) >= 10


def test_padding_collate_ignores_pad():
    from train.finetune_data import IGNORE_INDEX, PaddedCollate

    b = PaddedCollate(pad_id=1)([{"input_ids": [5, 6, 7], "labels": [-100, 7, 2]}, {"input_ids": [5], "labels": [2]}])
    assert b["input_ids"].tolist() == [[5, 6, 7], [5, 1, 1]]
    assert b["labels"].tolist() == [[-100, 7, 2], [2, IGNORE_INDEX, IGNORE_INDEX]]


def test_bc5cdr_real_file():
    from train.finetune_data import load_examples

    ds = load_examples("bc5cdr", shared_path("biogpt", "BC5CDR", "raw", "valid.json"))
    assert len(ds) == 500
    row = next(r for r in ds if r["id"] == "6794356")
    assert row["source"].startswith("Tricuspid valve regurgitation and lithium carbonate toxicity")
    assert row["target"].startswith("the relation between lithium carbonate and ")
    assert row["target"].endswith(" exists.") and "; the relation between" in row["target"]


def test_ddi_and_kd_dti_real_files():
    from train.finetune_data import load_examples

    ddi = load_examples("ddi", shared_path("biogpt", "DDI", "raw", "valid.json"))
    row = next(r for r in ddi if r["id"] == "DDI-DrugBank.d108")
    assert row["target"].startswith("the interaction between Isocarboxazid and Antabuse is advise; ")
    kd = load_examples("kd_dti", shared_path("biogpt", "KD-DTI", "raw", "valid.json"))
    assert len(kd) == 1000 and all(r["target"].startswith("the interaction between ") for r in kd.select(range(20)))


def test_real_pubmedqa_file():
    from train.finetune_data import load_examples

    ds = load_examples("pubmedqa", shared_path("pubmedqa", "pqal_fold0_dev_set.json"))
    from tasks.pubmedqa import LABELS

    assert len(ds) == 50 and {r["label"] for r in ds} <= set(LABELS)


def test_bad_file_is_a_clear_error(tmp_path):
    from tasks.base import DataFileError
    from train.finetune_data import load_examples

    p = tmp_path / "bad.json"
    p.write_text('{"1": {"QUESTION": "q?", "CONTEXTS": ["c"]}}')
    with pytest.raises(DataFileError, match=r"bad.json: item '1' has no 'final_decision'"):
        load_examples("pubmedqa", p)
    with pytest.raises(DataFileError, match=r"missing.json: missing ddi file; set task.bench_dir="):
        load_examples("ddi", tmp_path / "missing.json")


def test_finetune_from_pretrained_checkpoint(token_data, tmp_path):
    from train.run import run

    pre = tmp_path / "pre"
    run(compose(tiny_overrides(token_data, pre, 2)))
    qa = write_pubmedqa(tmp_path / "qa.json", 24)
    ft = tmp_path / "ft"
    result = run(compose(tiny_overrides(token_data, ft, 3, (
        "task=pubmedqa", f"task.files.train={qa}", f"task.files.val={qa}", "task.seq_len=64",
        f"task.init_from={pre / 'checkpoints' / 'last.ckpt'}", f"task.data_dir={token_data}"))))
    assert result.state == "completed" and sorted(read_losses(ft)) == [1, 2, 3]
