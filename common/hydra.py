"""Hydra glue every app shares: OmegaConf's errors as `ConfigError` naming the dotted key, the group
list of `--help`, and the callback that checks a composed config before Hydra writes anything.

Each app names its own check in its primary YAML:

    hydra:
      callbacks:
        check_config:
          _target_: common.hydra.CheckConfig
          check: train.config.check_or_exit   # called with the composed DictConfig
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import re
from collections.abc import Callable
from typing import Any

from hydra.core.global_hydra import GlobalHydra
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, MissingMandatoryValue, OmegaConfBaseException

from common.config import ConfigError


def omegaconf_error(e: OmegaConfBaseException, prefix: str = "") -> ConfigError:
    """OmegaConf's exception as ConfigError(dotted key, first line), with the closest valid key for
    a misspelt one. `prefix` is the section's dotted key when a section was typed on its own."""
    key = re.sub(r"\[\d+\]$", "", str(getattr(e, "full_key", None) or ""))
    if prefix and not (key == prefix or key.startswith(prefix + ".")):
        key = f"{prefix}.{key}" if key else prefix
    msg = getattr(e, "msg", None) or str(e)
    reason = msg.splitlines()[0] if msg else type(e).__name__
    obj = getattr(e, "object_type", None)
    if isinstance(e, ConfigKeyError) and obj is not None and dataclasses.is_dataclass(obj):
        valid = [f.name for f in dataclasses.fields(obj)]
        close = difflib.get_close_matches(str(getattr(e, "key", "")), valid, n=1)
        reason = "unknown key" + (f" (did you mean '{close[0]}'?)" if close else "") + f"; valid keys: {', '.join(valid)}"
    elif isinstance(e, MissingMandatoryValue):
        reason = "missing: it has no default, set it"
    return ConfigError(key or "<root>", reason)


def groups_help(*groups: str) -> str:
    """`group: option, option` lines for --help, from Hydra's own search path (files and ConfigStore)."""
    loader = GlobalHydra.instance().config_loader()
    return "\n".join(f"{g}: {', '.join(sorted(loader.get_group_options(g)))}" for g in groups)


def register_help_resolver() -> None:
    """`${app_groups:a,b}` in an app's hydra.help.template lists only that app's groups."""
    OmegaConf.register_new_resolver("app_groups", groups_help, replace=True)


def _resolve(dotted: str) -> Callable[[DictConfig], Any]:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


class CheckConfig(Callback):
    """Hydra calls this after composing and before it creates the run directory and .hydra/: the
    app's `check` prints one line naming the key and exits on a bad value, so nothing is written."""

    def __init__(self, check: str):
        self.check = check

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _resolve(self.check)(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _resolve(self.check)(config)
