"""The configuration error every app raises, and the bridge from a composed Hydra config to the
typed dataclass it was composed against.

Each app (`data_prep`, `train`, `eval`, `export`, `serve`) registers typed dataclasses in Hydra's
ConfigStore as the schema of its primary config and groups, so OmegaConf rejects unknown keys,
wrong types and enum values outside their set while composing. What a type cannot say (ranges,
cross-field rules) is checked in one function per app that raises `ConfigError`.
"""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A configuration value is wrong; raised before any work starts, naming the dotted key."""

    def __init__(self, key: str, reason: str):
        self.key = key
        self.reason = reason
        super().__init__(f"config key '{key}': {reason}")


def to_plain(cfg: Any) -> Any:
    """A DictConfig/ListConfig as plain dicts and lists (interpolations resolved); anything else as is."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(cfg, DictConfig | ListConfig):
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    return cfg


def check_range(key: str, value: float | int | None, lo: float | None = None, hi: float | None = None,
                *, lo_open: bool = False, hi_open: bool = False, allow_none: bool = False) -> None:
    """Raise ConfigError(key) unless lo <= value <= hi (strict with lo_open/hi_open)."""
    if value is None:
        if allow_none:
            return
        raise ConfigError(key, "must be set")
    bad_lo = lo is not None and (value <= lo if lo_open else value < lo)
    bad_hi = hi is not None and (value >= hi if hi_open else value > hi)
    if bad_lo or bad_hi:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        span = f"{left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"
        raise ConfigError(key, f"must be in {span}, got {value!r}")
