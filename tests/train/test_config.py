"""The training config: every shipped YAML composes against the schema and builds; bad keys, types,
enum values and ranges fail naming the key, before anything is written; the model group is the
model presets."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from hydra.errors import ConfigCompositionException

from model import ModelConfig, presets
from tasks.base import Kind

from .conftest import CONF, ROOT, compose

EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
GROUP_FILES = {g: sorted(p.stem for p in (CONF / g).glob("*.yaml")) for g in ("task", "trainer", "strategy", "logger")}


def _train(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "train", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_experiments_found():
    assert {"demo", "demo_finetune", "biogpt_4090", "biogpt_large_4090", "biogpt_8gpu"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_and_builds(name, tmp_path, token_data):
    import tasks
    from train.config import TrainConfig
    from train.run import build_datamodule, build_module, build_strategy

    cfg = compose([f"experiment={name}", f"run_dir={tmp_path}"])
    tc = TrainConfig.from_omegaconf(cfg)
    text = (CONF / "experiment" / f"{name}.yaml").read_text()
    assert text.startswith("# @package _global_"), "experiments are global overlays"
    mc = tc.model_config()
    assert tc.trainer.max_steps > 0 and mc.n_layer > 0
    build_strategy(tc)
    if tasks.get(tc.task.name).kind is Kind.LANGUAGE_MODEL:
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


@pytest.mark.parametrize("group", sorted(GROUP_FILES))
def test_every_group_option_composes_against_the_schema(group, tmp_path):
    """Each YAML of each group merges into the typed schema (a stray key or bad value would fail
    here) and, except the eval-only generate task, passes the whole config check."""
    from train.config import ConfigError, build_config

    assert GROUP_FILES[group], f"conf/{group}/ is empty"
    for option in GROUP_FILES[group]:
        cfg = compose([f"{group}={option}", f"run_dir={tmp_path}", f"task.data_dir={tmp_path}"])
        if group == "task" and option == "generate":
            with pytest.raises(ConfigError, match="nothing to train on") as e:
                build_config(cfg)
            assert e.value.key == "task"
            continue
        tc = build_config(cfg)
        if group == "task":
            assert tc.task.name == ("pretrain" if option == "perplexity" else option)


def test_model_group_is_the_presets_of_model_config():
    """model/config.py's presets are the only copy: the Hydra group is generated from them, so the
    two cannot disagree, and no YAML under conf/model/ may shadow a preset's name."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from train.config import build_config

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        options = set(GlobalHydra.instance().config_loader().get_group_options("model"))
    assert options == set(presets)
    shadowing = {p.stem for p in (CONF / "model").glob("*.yaml")} & set(presets) if (CONF / "model").is_dir() else set()
    assert not shadowing, f"conf/model/{sorted(shadowing)}.yaml would hide the preset of the same name"
    for name in presets:
        mc = build_config(compose([f"model={name}", "task.data_dir=x", "task.seq_len=32"])).model_config()
        assert mc == ModelConfig.from_name(name), name
        assert ModelConfig.from_mapping(mc.to_dict()) == mc  # what checkpoints store reads back
    assert ModelConfig.from_name("biogpt").dropout == 0.1  # BioGPT's dropout, which training uses


@pytest.mark.parametrize("override,key", [
    ("trainer.max_stepz=5", "max_stepz"),
    ("+optim.lr_peak=1.0", "optim.lr_peak"),
    ("+model.n_layers=3", "n_layers"),
    ("optim.schedule=wavy", "optim.schedule"),
    ("trainer.max_steps=abc", "trainer.max_steps"),
    ("debug.step_delay_s=-1", "debug.step_delay_s"),
    ("model.position=alibi", "model.position"),
    ("model.attn_backend=xformers", "model.attn_backend"),
    ("model.layer_pattern=[local,glob]", "model.layer_pattern"),
    ("model.n_layer=two", "model.n_layer"),
    ("model.char_stage=maybe", "model.char_stage"),
    ("trainer.precision=16", "trainer.precision"),
    ("strategy.sharding_strategy=HALF", "strategy.sharding_strategy"),
    ("logger.mode=sometimes", "logger.mode"),
    ("task.mode=beam", "task.mode"),
    ("task.files.trian=x.json", "task.files.trian"),
])
def test_bad_key_type_or_enum_fails_naming_it(override, key, tmp_path):
    from train.config import ConfigError, TrainConfig

    with pytest.raises((ConfigError, ConfigCompositionException)) as e:
        TrainConfig.from_omegaconf(compose(["experiment=demo", f"run_dir={tmp_path}", override]))
    assert key in str(e.value)


@pytest.mark.parametrize("override,key", [
    ("trainer.gradient_clip_val=-1", "trainer.gradient_clip_val"),  # would flip the gradient's sign
    ("optim.warmup_steps=-10", "optim.warmup_steps"),
    ("optim.weight_decay=-1", "optim.weight_decay"),
    ("trainer.save_top_k=-5", "trainer.save_top_k"),
    ("optim.lr=0", "optim.lr"),
    ("optim.min_lr_ratio=1.5", "optim.min_lr_ratio"),
    ("optim.betas=[0.9]", "optim.betas"),
    ("optim.betas=[0.9,1.0]", "optim.betas[1]"),
    ("optim.eps=0", "optim.eps"),
    ("optim.decay_steps=0", "optim.decay_steps"),
    ("data.batch_size=0", "data.batch_size"),
    ("data.num_workers=-1", "data.num_workers"),
    ("data.val_batches=0", "data.val_batches"),
    ("trainer.devices=0", "trainer.devices"),
    ("trainer.num_nodes=0", "trainer.num_nodes"),
    ("trainer.accumulate_grad_batches=0", "trainer.accumulate_grad_batches"),
    ("trainer.val_check_interval=0", "trainer.val_check_interval"),
    ("trainer.checkpoint_every_n_steps=0", "trainer.checkpoint_every_n_steps"),
    ("trainer.max_nan_skips=-1", "trainer.max_nan_skips"),
    ("trainer.log_every_n_steps=0", "trainer.log_every_n_steps"),
    ("strategy.stage=4", "strategy.stage"),
    ("seed=-1", "seed"),
    ("task.seq_len=1", "task.seq_len"),
    ("task.seq_len=300", "task.seq_len"),  # longer than a learned position table of 256 (set below)
    ("debug.nan_at_batches=[-1]", "debug.nan_at_batches[0]"),
    ("debug.sigkill_at_step=0", "debug.sigkill_at_step"),
    ("model.window=0", "model.window"),
    ("model.dropout=1.5", "model.dropout"),
    ("model.norm_eps=0", "model.norm_eps"),
    ("model.pad_id=9999", "model.pad_id"),
    ("model.d_model=30", "model.d_model"),
])
def test_out_of_range_values_fail_naming_the_key(override, key, tmp_path):
    from train.config import ConfigError, build_config

    extra = ["model.position=learned"] if key == "task.seq_len" and override.endswith("300") else []
    with pytest.raises(ConfigError) as e:
        build_config(compose(["experiment=demo", f"run_dir={tmp_path}", override, *extra]))
    assert e.value.key == key, str(e.value)


def test_misspelled_key_in_experiment_file_fails(tmp_path):
    """Keys in a plain mapping (not composed by Hydra) are checked against the same schema."""
    from train.config import ConfigError, TrainConfig

    raw = {"run_dir": str(tmp_path), "task": {"name": "pretrain", "data_dir": str(tmp_path)}, "trainer": {"max_stepz": 3}}
    with pytest.raises(ConfigError, match=r"trainer\.max_stepz.*did you mean 'max_steps'"):
        TrainConfig.from_omegaconf(raw)


@pytest.mark.slow
def test_cli_bad_config_fails_before_anything_is_written(tmp_path):
    """A range error (checked by the Hydra callback) and a misspelled key (Hydra's composition)
    both end the process naming the key, and neither creates run_dir nor .hydra/."""
    run_dir = tmp_path / "run"
    p = _train("experiment=demo", f"run_dir={run_dir}", f"task.data_dir={tmp_path}", "trainer.gradient_clip_val=-1")
    assert p.returncode == 1
    assert p.stderr.strip().splitlines() == [
        "error: config key 'trainer.gradient_clip_val': must be in [0, inf], got -1.0"]
    p = _train("experiment=demo", f"run_dir={run_dir}", "trainer.max_stepz=3")
    assert p.returncode == 1 and "trainer.max_stepz" in p.stderr
    assert not run_dir.exists()


@pytest.mark.slow
def test_cli_help_lists_train_groups_only():
    p = _train("--help")
    assert p.returncode == 0, p.stderr
    listing = p.stdout.split("== Configuration groups ==")[1].split("== Config ==")[0]
    groups = {line.split(":")[0] for line in listing.splitlines() if ": " in line}
    assert groups == {"task", "model", "trainer", "strategy", "logger", "experiment"}, p.stdout
    assert "model: biogpt, biogpt_dense, biogpt_large, tiny" in p.stdout
