"""Every `python -m <app> ...` command shown in README.md composes against that app's schema
(issue 11): a renamed key, group option or experiment in the code breaks this test, not a reader.

Commands are read from the README's ```bash blocks (backslash continuations joined, trailing
comments dropped, `$VARS` replaced by a placeholder path) and composed with Hydra's compose API
with the app's primary config. Skipped, and said so: commands that need the network
(`eval.data fetch`) and modules that are not Hydra apps (`train.report`). `-m` runs compose with
their launcher override removed (the launcher is a Hydra plugin setting, not the app's schema).
The real-data commands run end to end at tiny scale in tests/e2e/test_real_path.py.
"""

from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# app module -> (primary config name, module registering its schema, its register function or None)
APPS = {"data_prep": ("prep", "data_prep.config", "register_schemas"), "train": ("train", "train.config", None),
        "eval": ("eval", "eval.config", None), "export": ("export", "export.config", "register"),
        "serve": ("serve", "serve.config", "register")}
NETWORK = {"eval.data": "downloads the evaluation data (network)"}
NOT_HYDRA = {"train.report": "argparse script, not a Hydra app"}


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    cmds = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line.startswith("python -m "):
                cmds.append(re.sub(r"\s+#.*$", "", line))
    return cmds


COMMANDS = readme_commands()


def test_the_readme_shows_the_real_path():
    apps = {shlex.split(c)[2] for c in COMMANDS}
    assert {"data_prep", "train", "eval", "eval.data"} <= apps
    assert any("task.init_from=" in c and "task.data_dir" not in c for c in COMMANDS if " -m train " in f" {c} ")


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_composes(command):
    from hydra import compose, initialize_config_dir

    args = shlex.split(re.sub(r"\$\{?\w+\}?", "/tmp/x", command))[2:]
    app, overrides = args[0], [a for a in args[1:] if a != "-m" and not a.startswith("hydra/launcher=")]
    if app in NETWORK:
        pytest.skip(NETWORK[app])
    if app in NOT_HYDRA:
        pytest.skip(NOT_HYDRA[app])
    assert app in APPS, f"README shows `python -m {app}`, which is no app of this repository"
    config_name, schema, register = APPS[app]
    module = importlib.import_module(schema)
    if register:
        getattr(module, register)()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=app == "train")
        assert cfg is not None
        if app == "train":  # the full check (experiment names, ranges, cross-field rules) as the app runs it
            from train.config import build_config, check_experiment

            check_experiment(cfg)
            assert build_config(cfg).run_dir


@pytest.mark.parametrize(("app", "own", "foreign"), [
    ("train", "experiment: ", "source: "),
    ("eval", "task: ", "experiment: "),
    ("data_prep", "source: ", "experiment: "),
])
def test_help_lists_only_the_apps_own_groups(app, own, foreign):
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", app, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-1000:]
    assert p.stdout.startswith(f"python -m {app}: ") and f"\n{own}" in p.stdout and f"\n{foreign}" not in p.stdout
