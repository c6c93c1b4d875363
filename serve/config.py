"""The typed config of `python -m serve`: the schema of conf/serve.yaml (Hydra's ConfigStore, so an
unknown key or a wrong type fails while composing) and the checks a type cannot express."""

from __future__ import annotations

import ipaddress
import logging
import os
import re
from dataclasses import dataclass, field
from enum import Enum

from omegaconf import MISSING

from common.config import ConfigError, check_range, to_plain
from export.config import checkpoint_path

log = logging.getLogger(__name__)


class DType(str, Enum):
    auto = "auto"  # bfloat16 on CUDA, float32 on CPU
    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"


class LogLevel(str, Enum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


@dataclass
class DebugConfig:
    step_delay_s: float = 0.0  # sleep after every decoding step: keeps the engine busy in tests and drills


@dataclass
class ServeConfig:
    checkpoint: str = MISSING  # a checkpoint written by `python -m train`, or a folder written by `python -m export`
    host: str = "127.0.0.1"  # loopback only; another address exposes the server to the network
    port: int = 8000  # 0 = any free port (printed at startup)
    model_name: str | None = None  # the id clients pass as `model` (default: the run's or export's folder name)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: DType = DType.auto
    max_batch_size: int = 8  # sequences decoded together; a request with n=k takes k of them
    batch_wait_ms: float = 5.0  # how long a batch waits for more requests before it starts
    max_queue: int = 64  # requests waiting for a batch; when full, new ones get 503
    default_max_tokens: int = 16  # when a request sets no max_tokens (OpenAI's completions default)
    max_n: int = 4  # the largest `n` a request may ask for
    api_key_env: str = "BIOGPT_API_KEY"  # environment variable holding the API key; unset or empty = no key
    log_level: LogLevel = LogLevel.info
    debug: DebugConfig = field(default_factory=DebugConfig)


def register() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="serve_schema", node=ServeConfig)


def validate(cfg) -> ServeConfig:
    """DictConfig (or ServeConfig) -> ServeConfig; raises ConfigError naming the key."""
    raw = to_plain(cfg)
    if isinstance(raw, dict):
        raw = {k: v for k, v in raw.items() if k != "hydra"}
        if raw.get("checkpoint") in (None, "", "???"):
            raise ConfigError("checkpoint", "missing; pass checkpoint=<run_dir>/checkpoints/last.ckpt or an exported folder")
        raw["dtype"] = DType(raw.get("dtype", "auto"))
        raw["log_level"] = LogLevel(raw.get("log_level", "info"))
        raw["debug"] = DebugConfig(**(raw.get("debug") or {}))
        c = ServeConfig(**raw)
    else:
        c = raw
    try:
        c.dtype, c.log_level = DType(c.dtype), LogLevel(c.log_level)
    except ValueError as e:
        raise ConfigError("dtype" if "DType" in str(e) else "log_level", str(e)) from None
    ckpt = checkpoint_path(c.checkpoint)
    if not c.host.strip():
        raise ConfigError("host", "is empty; use 127.0.0.1 (this machine only)")
    check_range("port", c.port, 0, 65535)
    check_range("max_batch_size", c.max_batch_size, 1, 1024)
    check_range("batch_wait_ms", c.batch_wait_ms, 0, 10_000)
    check_range("max_queue", c.max_queue, 1, 1_000_000)
    check_range("default_max_tokens", c.default_max_tokens, 1)
    check_range("max_n", c.max_n, 1)
    if c.max_n > c.max_batch_size:
        raise ConfigError("max_n", f"{c.max_n} is larger than max_batch_size={c.max_batch_size}: the n choices of "
                                   "a request are decoded in one batch")
    check_range("debug.step_delay_s", c.debug.step_delay_s, 0, 60)
    if c.model_name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}", c.model_name):
        raise ConfigError("model_name", f"{c.model_name!r}: use letters, digits and . _ : / - (at most 128)")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", c.api_key_env):
        raise ConfigError("api_key_env", f"{c.api_key_env!r} is not an environment variable name")
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", c.device):
        raise ConfigError("device", f"{c.device!r}; use auto, cpu, cuda or cuda:N")
    if c.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("device", f"{c.device} requested but no CUDA device is visible; use device=cpu or auto")
    c.checkpoint = str(ckpt.resolve())
    return c


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_key(c: ServeConfig) -> str | None:
    """The key clients must send (Authorization: Bearer), from the environment; None = no key."""
    return os.environ.get(c.api_key_env) or None
