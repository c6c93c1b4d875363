"""Every shipped experiment composes, validates and builds; bad keys fail early, naming the key."""

from __future__ import annotations

import pytest
import torch

from .conftest import CONF, compose

EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


def test_experiments_found():
    assert {"demo", "demo_finetune", "biogpt_4090", "biogpt_large_4090", "biogpt_8gpu"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_and_builds(name, tmp_path, token_data):
    from train.config import TrainConfig
    from train.run import build_datamodule, build_module, build_strategy

    cfg = compose([f"experiment={name}", f"run_dir={tmp_path}"])
    tc = TrainConfig.from_omegaconf(cfg)
    text = (CONF / "experiment" / f"{name}.yaml").read_text()
    assert text.startswith("# @package _global_"), "experiments are global overlays"
    mc = tc.model_config()
    assert tc.trainer.max_steps > 0 and mc.n_layer > 0
    build_strategy(tc)
    if tc.task.is_pretrain:
        tc.task.data_dir = str(token_data)  # the real shards of the preset are not here
        dm = build_datamodule(tc, token_data / "tokenizer" / "tokenizer.json")
        dm.setup("fit")
        assert len(dm.train_ds) > 0
    else:
        dm = build_datamodule(tc, token_data / "tokenizer" / "tokenizer.json")
        assert dm.task == tc.task.name
    small = mc.n_layer * mc.d_model <= 4096
    if small:  # tiny: build for real with the vocabulary attached
        tc.task.init_from = None
        module = build_module(tc, vocab=None)
        assert sum(p.numel() for p in module.parameters()) > 0
    else:  # big presets: shapes only, no memory
        tc.task.init_from = None
        with torch.device("meta"):
            module = build_module(tc, vocab=None)
        n = sum(p.numel() for p in module.model.parameters())
        assert n > 100e6, f"{name}: {n} parameters"
        opt = module.configure_optimizers()["optimizer"]
        assert len(opt.param_groups) == 2


@pytest.mark.parametrize("override,key", [
    ("trainer.max_stepz=5", "max_stepz"),
    ("+optim.lr_peak=1.0", "optim.lr_peak"),
    ("+model.n_layers=3", "n_layers"),
    ("optim.schedule=wavy", "optim.schedule"),
    ("trainer.max_steps=abc", "trainer.max_steps"),
    ("debug.step_delay_s=-1", "debug.step_delay_s"),
])
def test_bad_key_fails_naming_it(override, key, tmp_path):
    from hydra.errors import ConfigCompositionException

    from train.config import ConfigError, TrainConfig

    with pytest.raises((ConfigError, ConfigCompositionException)) as e:
        TrainConfig.from_omegaconf(compose(["experiment=demo", f"run_dir={tmp_path}", override]))
    assert key in str(e.value)


def test_misspelled_key_in_experiment_file_fails(tmp_path):
    """Keys in YAML (not on the command line) are checked by the dataclasses, not by Hydra."""
    from train.config import ConfigError, TrainConfig

    raw = {"run_dir": str(tmp_path), "trainer": {"max_stepz": 3}}
    with pytest.raises(ConfigError, match=r"trainer\.max_stepz.*did you mean 'max_steps'"):
        TrainConfig.from_omegaconf(raw)
