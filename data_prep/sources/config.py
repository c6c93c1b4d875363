"""Validation of `conf/source/*.yaml`: every key is checked before any download or extraction.

Errors are `ConfigError("source.<key>", reason)` so a misspelt key fails at startup, not after
an hour of downloading.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from data_prep.download import MAX_CONNECTIONS, HttpConfig
from data_prep.errors import ConfigError

SOURCE_NAMES = ("pubmed_baseline", "pubmed_updates", "pmc_oa", "local", "demo")
HTTP_KEYS = frozenset({"connections", "retries", "backoff_s", "backoff_max_s", "timeout_s", "progress"})


def to_plain(cfg: Any) -> dict:
    """A plain dict from a dict or an OmegaConf DictConfig (interpolations resolved)."""
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except ImportError:  # omegaconf is a dependency, but the sources work without it
        pass
    if not isinstance(cfg, Mapping):
        raise ConfigError("source", f"must be a mapping with a 'name' key, got {type(cfg).__name__}")
    return dict(cfg)


def check_keys(cfg: Mapping, allowed: set[str] | frozenset[str]) -> None:
    unknown = sorted(set(cfg) - set(allowed) - {"name"})
    if unknown:
        raise ConfigError(f"source.{unknown[0]}", f"unknown key for source '{cfg.get('name')}'; "
                                                  f"allowed: {', '.join(sorted(allowed))}")


def get_int(cfg: Mapping, key: str, default: int | None, *, lo: int = 0, hi: int | None = None) -> int | None:
    value = cfg.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"source.{key}", f"must be an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise ConfigError(f"source.{key}", f"must be {bound}, got {value}")
    return value


def get_float(cfg: Mapping, key: str, default: float, *, lo: float = 0.0) -> float:
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < lo:
        raise ConfigError(f"source.{key}", f"must be a number >= {lo}, got {value!r}")
    return float(value)


def get_bool(cfg: Mapping, key: str, default: bool) -> bool:
    value = cfg.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"source.{key}", f"must be true or false, got {value!r}")
    return value


def get_url(cfg: Mapping, key: str, default: str) -> str:
    value = cfg.get(key, default)
    if not isinstance(value, str) or not re.match(r"^https?://[^/\s]+", value):
        raise ConfigError(f"source.{key}", f"must be an http(s) URL, got {value!r}")
    return value if value.endswith("/") else value + "/"


def http_config(cfg: Mapping) -> HttpConfig:
    d = HttpConfig()
    return HttpConfig(
        connections=get_int(cfg, "connections", d.connections, lo=1, hi=MAX_CONNECTIONS),  # type: ignore[arg-type]
        retries=get_int(cfg, "retries", d.retries, lo=0, hi=50),  # type: ignore[arg-type]
        backoff_s=get_float(cfg, "backoff_s", d.backoff_s),
        backoff_max_s=get_float(cfg, "backoff_max_s", d.backoff_max_s),
        timeout_s=get_float(cfg, "timeout_s", d.timeout_s, lo=0.001),
        progress=get_bool(cfg, "progress", d.progress),
    )


def parse_file_range(value: Any, key: str = "source.files") -> list[tuple[int, int]] | None:
    """`all` -> None; `5`, `1-10`, `1-3,7` (or a list of those) -> inclusive (lo, hi) ranges.

    On the Hydra command line quote a comma list (`source.files='1-3,7'`): an unquoted comma
    means a multirun sweep there.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() == "all"):
        return None
    parts: list[Any]
    if isinstance(value, (list, tuple)):
        parts = list(value)
    elif isinstance(value, str):
        parts = [p for p in value.split(",")]
    else:
        parts = [value]
    ranges: list[tuple[int, int]] = []
    for part in parts:
        if isinstance(part, bool):
            raise ConfigError(key, f"expected 'all', a number, 'a-b' or a comma list, got {value!r}")
        if isinstance(part, int):
            lo = hi = part
        else:
            m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", str(part))
            if m is None:
                raise ConfigError(key, f"expected 'all', a number, 'a-b' or a comma list like '1-3,7', got {value!r}")
            lo = int(m.group(1))
            hi = int(m.group(2)) if m.group(2) is not None else lo
        if lo < 1 or hi < lo:
            raise ConfigError(key, f"range {lo}-{hi} is empty or starts below 1 (NCBI files start at 0001)")
        ranges.append((lo, hi))
    if not ranges:
        raise ConfigError(key, "is empty; use 'all' or a range like '1-10'")
    return ranges


def in_ranges(n: int, ranges: list[tuple[int, int]] | None) -> bool:
    return ranges is None or any(lo <= n <= hi for lo, hi in ranges)
