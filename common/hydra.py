"""Hydra glue every app shares: OmegaConf's errors as `ConfigError` naming the dotted key, and the
group list of `--help` (`${app_groups:a,b}` in an app's hydra.help.template). Each app keeps its own
check callback (they differ: data_prep checks its out_dir guard, train the hardware and sweeps)."""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable
from typing import Any

from hydra.core.global_hydra import GlobalHydra
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
        reason = "is required (it has no default): set it"
    return ConfigError(key or "<root>", reason)


def build_schema(schema: type, cfg: Any, missing: Callable[[str], ConfigError]) -> Any:
    """The schema dataclass built from a composed config (a DictConfig from Hydra, or a plain dict of
    the same shape, validated here): `hydra` is left out, interpolations resolved, a key still `???`
    raises `missing(key)`, any other OmegaConf error a ConfigError naming the key."""
    node = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg)
    try:
        body = {k: OmegaConf.to_container(node[k], resolve=True) if OmegaConf.is_config(node[k]) else node[k]
                for k in node if k != "hydra" and not OmegaConf.is_missing(node, k)}  # missing: the schema's ???
        merged = OmegaConf.merge(OmegaConf.structured(schema), body)
        keys = sorted(OmegaConf.missing_keys(merged))
        if keys:
            raise missing(keys[0])
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as e:
        raise omegaconf_error(e) from None


def groups_help(*groups: str) -> str:
    """`group: option, option` lines for --help, from Hydra's own search path (files and ConfigStore)."""
    loader = GlobalHydra.instance().config_loader()
    return "\n".join(f"{g}: {', '.join(sorted(loader.get_group_options(g)))}" for g in groups)


def register_help_resolver() -> None:
    """`${app_groups:a,b}` in an app's hydra.help.template lists only that app's groups."""
    OmegaConf.register_new_resolver("app_groups", groups_help, replace=True)
