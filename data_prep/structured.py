"""A mapping typed against a config dataclass with OmegaConf (structured configs), with OmegaConf's
errors turned into the project's `ConfigError` naming the dotted key.

Hydra does the same while composing `python -m data_prep ...`; this is the path for a config
given as a plain dict or DictConfig (tests, `slurm/submit.py`, library use).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from common.config import ConfigError
from common.hydra import omegaconf_error as config_error

T = TypeVar("T")


def typed(schema: type[T] | DictConfig, values: Mapping | DictConfig | None, prefix: str = "") -> T:
    """`values` merged onto the schema's defaults and built as the schema's dataclass.

    `schema` is a dataclass or an `OmegaConf.structured` node (for a schema whose nested nodes
    were chosen first, like the source of the prep config). `prefix` is the dotted key of this
    section in the app's config, so errors name e.g. `filter.min_chars`.
    """
    node = schema if isinstance(schema, DictConfig) else OmegaConf.structured(schema)
    try:
        _merge(node, values or {}, "")
        return OmegaConf.to_object(node)  # type: ignore[return-value]
    except OmegaConfBaseException as e:
        raise config_error(e, prefix) from None
    except _KeyedError as e:
        raise ConfigError(_join(prefix, e.key), e.reason) from None


class _KeyedError(Exception):
    def __init__(self, key: str, reason: str):
        self.key, self.reason = key, reason


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix and key else prefix or key


def _merge(node: DictConfig, values: Mapping, path: str) -> None:
    """Merge key by key. OmegaConf names the node it merged into, not always the key at fault
    (a list where a mapping belongs): then the deepest key whose value failed to merge is named."""
    for k, v in values.items():
        key = _join(path, str(k))
        try:
            node.merge_with({k: v})
        except OmegaConfBaseException as e:
            named = re.sub(r"\[\d+\]$", "", str(getattr(e, "full_key", None) or ""))
            if named == key or named.startswith(key + "."):
                raise  # OmegaConf's key is the one at fault (or inside it)
            child = node._get_node(k) if isinstance(k, str) and k in node else None
            if isinstance(v, Mapping) and isinstance(child, DictConfig):
                _merge(child, v, key)
            raise _KeyedError(key, str(e).splitlines()[0] if str(e) else type(e).__name__) from None


def plain(values: Any) -> Any:
    """Deep plain dicts/lists (enums as their values), for hashing and the manifest."""
    node = values if isinstance(values, DictConfig) else OmegaConf.structured(values)
    return OmegaConf.to_container(node, resolve=True, enum_to_str=True)
