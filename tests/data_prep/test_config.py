"""The prep config: every shipped YAML composes against its schema, the YAML files repeat no
default, and a wrong key, type, enum value or range fails before anything is written to disk."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from common.config import ConfigError
from data_prep.config import PrepConfig, build_config, check_config
from data_prep.sources.config import SOURCE_SCHEMAS, DemoSource, LocalSource
from data_prep.tokens.tokenizer import TOKENIZER_SCHEMAS, PretrainedTokenizerConfig, save_tokenizer, train_bpe
from tests.conftest import ROOT
from tests.data_prep.conftest import compose_prep

CONF = ROOT / "conf"
SOURCES = sorted(p.stem for p in (CONF / "source").glob("*.yaml"))
TOKENIZERS = sorted(p.stem for p in (CONF / "tokenizer").glob("*.yaml"))


@pytest.fixture(scope="module")
def tokenizer_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    save_tokenizer(train_bpe(["a small corpus for a small tokenizer"] * 20, vocab_size=300), path)
    return path


def test_every_shipped_group_has_a_schema():
    assert SOURCES == sorted(SOURCE_SCHEMAS) and TOKENIZERS == sorted(TOKENIZER_SCHEMAS)


@pytest.mark.parametrize("tokenizer", TOKENIZERS)
@pytest.mark.parametrize("source", SOURCES)
def test_every_shipped_yaml_composes_against_its_schema(source, tokenizer, tmp_path, tokenizer_file):
    overrides = [f"source={source}", f"tokenizer={tokenizer}", f"out_dir={tmp_path / 'out'}"]
    if source == "local":
        overrides.append(f"source.path={tmp_path}")
    if tokenizer == "pretrained":
        overrides.append(f"tokenizer.path={tokenizer_file}")
    composed = compose_prep(overrides)
    typed = OmegaConf.to_object(composed)  # the composed config is an instance of the schema
    assert isinstance(typed, PrepConfig)
    assert type(typed.source) is SOURCE_SCHEMAS[source] and type(typed.tokenizer) is TOKENIZER_SCHEMAS[tokenizer]
    check_config(typed)
    assert build_config(composed) == typed  # the plain-mapping path gives the same config
    assert not (tmp_path / "out").exists()


def test_yaml_files_hold_presets_only():
    """A value a YAML file sets must differ from its schema's default (else the default is written twice)."""
    schema = OmegaConf.to_container(OmegaConf.structured(PrepConfig), resolve=False, enum_to_str=True)
    files = [(CONF / "prep.yaml", None)] + [(CONF / g / f"{n}.yaml", g) for g in ("source", "tokenizer")
                                             for n in (SOURCES if g == "source" else TOKENIZERS)]
    for path, group in files:
        data = yaml.safe_load(path.read_text())
        assert isinstance(data.get("defaults"), list) and data["defaults"][0] in (
            "prep_schema", f"{path.stem}_schema"), f"{path}: its schema must come first in the defaults list"
        values = {k: v for k, v in data.items() if k not in ("defaults", "hydra")}
        if group == "source":
            defaults = dataclasses.asdict(SOURCE_SCHEMAS[path.stem]())
        elif group == "tokenizer":
            defaults = dataclasses.asdict(TOKENIZER_SCHEMAS[path.stem]())
        else:
            defaults = schema
        repeated = _repeated(values, defaults)
        assert not repeated, f"{path} repeats the schema's defaults: {repeated}"


def _repeated(values: dict, defaults: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in values.items():
        d = defaults.get(k) if isinstance(defaults, dict) else None
        if isinstance(v, dict) and isinstance(d, dict):
            out += _repeated(v, d, f"{prefix}{k}.")
        elif v == d:
            out.append(f"{prefix}{k}")
    return out


def cli(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    return subprocess.run([sys.executable, "-m", "data_prep", *args], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.mark.parametrize("override, key", [
    ("shards.max_tokenz=5", "shards.max_tokenz"),  # misspelt key
    ("workers=many", "workers"),  # wrong type
    ("stage=mapp", "stage"),  # enum value outside its set
    ("source.n_abstract=300", "source.n_abstract"),  # a key of another source (the demo's), or a typo
    ("shards.max_tokens=-5", "shards.max_tokens"),  # range: checked by the callback, still before any write
])
def test_cli_fails_naming_the_key_before_anything_is_written(override, key, tmp_path):
    out = tmp_path / "out"
    r = cli([f"source.path={tmp_path}", f"out_dir={out}", override])
    assert r.returncode != 0 and key in r.stderr, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    assert not out.exists()  # not even Hydra's out_dir/.hydra


def test_cli_refuses_another_configs_out_dir_before_hydra_writes_into_it(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"config_hash": "0" * 64, "format_version": 1}))
    r = cli([f"source.path={tmp_path}", f"out_dir={out}"])
    assert r.returncode == 2 and "another config" in r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["run.json"]  # the other run's .hydra record is untouched


def test_checks_name_the_key():
    base = {"out_dir": "x", "source": {"name": "demo"}}
    for values, key in [({"task": {"index": 3, "count": 3}, "stage": "map"}, "task.index"),
                        ({"task": {"count": 2}}, "task.count"),
                        ({"source": {"name": "demo", "n_abstracts": 10}}, "source.n_abstracts"),
                        ({"source": {"name": "nope"}}, "source.name"),
                        ({"source": {"name": "pmc_oa", "license_groups": ["commercial", "free"]}}, "source.license_groups"),
                        ({"tokenizer": {"kind": "pretrained"}}, "tokenizer.path"),
                        ({"decontam": {"sources": ["a"]}}, "decontam.sources"),
                        ({"out_dir": ""}, "out_dir")]:
        with pytest.raises(ConfigError) as e:
            build_config({**base, **values})
        assert e.value.key == key, (values, e.value)


def test_source_name_must_match_its_schema():
    cfg = build_config({"out_dir": "x", "source": {"name": "demo"}})
    cfg.source = LocalSource(name="demo", path=".")
    with pytest.raises(ConfigError, match="source.name"):
        check_config(cfg)
    cfg.source = DemoSource()
    check_config(cfg)
    cfg.tokenizer = PretrainedTokenizerConfig(kind="bpe", path="x")
    with pytest.raises(ConfigError, match="tokenizer.kind"):
        check_config(cfg)


def test_the_defaults_in_docs_cleaning_md_are_the_schemas(monkeypatch):
    monkeypatch.delenv("BIOGPT_EVAL_DATA", raising=False)
    text = (ROOT / "docs" / "cleaning.md").read_text()
    block = text.split("## Keys and defaults", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    documented = yaml.safe_load(block)
    defaults = OmegaConf.to_container(OmegaConf.structured(PrepConfig), enum_to_str=True)
    for section, values in documented.items():
        assert values == defaults[section], f"docs/cleaning.md `{section}:` differs from the dataclass defaults"


def test_a_secret_in_a_url_is_refused_before_anything_is_written(tmp_path):
    """The sources read public servers anonymously; a password or token given on the command line
    would otherwise be written to out_dir/.hydra/config.yaml, overrides.yaml and manifest.json."""
    out = tmp_path / "out"
    r = cli(["source=pubmed_baseline", "source.base_url=https://alice:s3cr3t@mirror.example.org/pubmed/",
             f"out_dir={out}"])
    assert r.returncode == 2 and "source.base_url" in r.stderr and "credentials" in r.stderr, r.stderr[-2000:]
    assert "s3cr3t" not in r.stderr + r.stdout and "Traceback" not in r.stderr
    assert not out.exists()  # no .hydra/config.yaml or overrides.yaml holding it
    base = {"out_dir": "x", "source": {"name": "pmc_oa"}}
    for url, why in [("https://pmc.example.org/?X-Amz-Signature=abc", "query"),
                     ("ftp://bob:hunter2@ftp.example.org/", "http")]:
        with pytest.raises(ConfigError, match=why) as e:
            build_config({**base, "source": {"name": "pmc_oa", "base_url": url}})
        assert e.value.key == "source.base_url" and "hunter2" not in str(e.value)


def test_parse_limits_are_checked():
    for key in ("max_record_nodes", "max_record_mb"):
        with pytest.raises(ConfigError) as e:
            build_config({"out_dir": "x", "source": {"name": "demo"}, "parse": {key: 0}})
        assert e.value.key == f"parse.{key}"
