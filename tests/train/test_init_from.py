"""Fine-tuning from `task.init_from` (issue 11): the tokenizer, vocabulary size and model shape come
from the checkpoint, whatever task.data_dir / model say; KD-DTI never trains on its validation file."""

from __future__ import annotations

import json

import pytest

from common.config import ConfigError

from .conftest import compose, read_losses, tiny_overrides, write_pubmedqa, write_token_data


@pytest.fixture(scope="module")
def pretrained(token_data, tmp_path_factory):
    from train.run import run

    pre = tmp_path_factory.mktemp("pre")
    run(compose(tiny_overrides(token_data, pre, 2)))
    return pre / "checkpoints" / "last.ckpt"


def _ft(tmp_path, ckpt, extra=()):
    qa = write_pubmedqa(tmp_path / "qa.json", 16)
    val = write_pubmedqa(tmp_path / "qa_val.json", 8, seed=1)
    return [f"run_dir={tmp_path / 'ft'}", "task=pubmedqa", f"task.init_from={ckpt}", f"task.files.train={qa}",
            f"task.files.val={val}", "task.seq_len=64", "logger=csv", "data.batch_size=4", "data.val_batches=1",
            "trainer.max_steps=2", "trainer.val_check_interval=2", "trainer.checkpoint_every_n_steps=2",
            "trainer.progress_bar=false", *extra]


def test_only_init_from_takes_tokenizer_and_shape_from_the_checkpoint(pretrained, tmp_path):
    from train.run import run

    # No task.data_dir, and the default model preset (tiny) with a vocabulary size the tokenizer
    # does not have: before issue 11 this stopped with "set model.vocab_size=<wrong number>".
    result = run(compose(_ft(tmp_path, pretrained, ("model.vocab_size=42384", "model.n_layer=3"))))
    assert result.state == "completed" and sorted(read_losses(tmp_path / "ft")) == [1, 2]
    pre_cfg = json.loads((pretrained.parent.parent / "config.json").read_text())["model"]
    ft_cfg = json.loads((tmp_path / "ft" / "config.json").read_text())["model"]
    assert ft_cfg["vocab_size"] == pre_cfg["vocab_size"] != 42384 and ft_cfg["n_layer"] == pre_cfg["n_layer"]
    assert (tmp_path / "ft" / "tokenizer.json").read_bytes() == (pretrained.parent.parent / "tokenizer.json").read_bytes()


def test_a_data_dir_with_another_tokenizer_is_ignored(pretrained, tmp_path):
    from train.run import run

    other = write_token_data(tmp_path / "other", vocab_size=290, seed=3)  # the demo-tokenizer situation
    result = run(compose(_ft(tmp_path, pretrained, (f"task.data_dir={other}", "task.vocab_size_from_tokenizer=true"))))
    assert result.state == "completed"
    # the run records the checkpoint's pretraining data (eval's contamination guard reads it)
    pre_data = json.loads((pretrained.parent.parent / "config.json").read_text())["task"]["data_dir"]
    assert json.loads((tmp_path / "ft" / "config.json").read_text())["task"]["data_dir"] == pre_data


def test_a_wrong_explicit_tokenizer_gets_the_right_advice(pretrained, tmp_path):
    from train.run import run

    other = write_token_data(tmp_path / "other", vocab_size=290, seed=3)
    with pytest.raises(ConfigError, match=r"task.tokenizer.*leave task.tokenizer unset") as e:
        run(compose(_ft(tmp_path, pretrained, (f"task.tokenizer={other / 'tokenizer' / 'tokenizer.json'}",))))
    assert "set model.vocab_size" not in str(e.value)


def test_finetune_without_init_from_or_data_dir_says_what_to_set(tmp_path):
    from train.config import build_config

    with pytest.raises(ConfigError, match=r"task.data_dir.*task.init_from"):
        build_config(compose([f"run_dir={tmp_path}", "task=pubmedqa"]))


def test_kd_dti_without_train_file_fails_instead_of_training_on_val(pretrained, tmp_path):
    from train.run import run

    bench = tmp_path / "bench"
    (bench / "biogpt" / "KD-DTI" / "raw").mkdir(parents=True)
    (bench / "biogpt" / "KD-DTI" / "raw" / "valid.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"task.files.train.*train.json does not exist.*eval.data fetch"):
        run(compose([f"run_dir={tmp_path / 'kd'}", "task=kd_dti", f"task.init_from={pretrained}",
                     f"task.bench_dir={bench}", "task.seq_len=64"]))
    assert not (tmp_path / "kd" / "config.json").exists()


def test_hoc_finetunes_from_a_checkpoint(pretrained, tmp_path):
    """HoC (BioGPT fine-tunes it too): ../shared has its test split only, so a slice of it stands in
    for train.tsv / valid.tsv in the task's layout under task.bench_dir."""
    from tests.conftest import shared_path
    from train.run import run

    rows = shared_path("biogpt", "HoC", "raw", "test.tsv").read_text(encoding="utf-8").splitlines()
    raw = tmp_path / "bench" / "biogpt" / "HoC" / "raw"
    raw.mkdir(parents=True)
    (raw / "train.tsv").write_text("\n".join(rows[:40]) + "\n", encoding="utf-8")
    (raw / "valid.tsv").write_text("\n".join(rows[40:60]) + "\n", encoding="utf-8")
    result = run(compose([f"run_dir={tmp_path / 'hoc'}", "task=hoc", f"task.init_from={pretrained}",
                          f"task.bench_dir={tmp_path / 'bench'}", "task.seq_len=64", "logger=csv", "data.batch_size=4",
                          "data.val_batches=1", "trainer.max_steps=2", "trainer.val_check_interval=2",
                          "trainer.checkpoint_every_n_steps=2", "trainer.progress_bar=false"]))
    assert result.state == "completed" and sorted(read_losses(tmp_path / "hoc")) == [1, 2]
