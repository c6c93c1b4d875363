"""Experiment tracking: wandb (offline unless logged in) or CSV, and keeping secrets out of files."""

from __future__ import annotations

import netrc
import os
import re
import uuid
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, WandbLogger

from common.atomic import atomic_write_text

_SECRET_KEY = re.compile(r"(^|[_.-])(api_?key|secret|password|passwd|token|auth)$", re.IGNORECASE)
SECRET_ENV = ("WANDB_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY")


def scrub(obj: Any) -> Any:
    """A copy with secret-looking keys masked and any value equal to a secret env var masked."""
    secrets = {os.environ[k] for k in SECRET_ENV if os.environ.get(k)}
    if isinstance(obj, dict):
        return {k: "***" if isinstance(k, str) and _SECRET_KEY.search(k) else scrub(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(scrub(v) for v in obj)
    if isinstance(obj, str):
        for s in secrets:
            obj = obj.replace(s, "***")
    return obj


def wandb_logged_in() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        rc = netrc.netrc(os.path.expanduser(os.environ.get("NETRC", "~/.netrc")))
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].rstrip("/")
    return rc.authenticators(host) is not None


def wandb_mode(configured: str) -> str:
    """WANDB_MODE wins; `auto` is online only when credentials exist (runs sync later otherwise)."""
    env = os.environ.get("WANDB_MODE")
    if env:
        return env
    if configured != "auto":
        return configured
    return "online" if wandb_logged_in() else "offline"


def build_logger(cfg, run_dir: Path, resolved_config: dict):
    lc = cfg.logger
    if lc.name == "csv":
        return CSVLogger(save_dir=str(run_dir), name="lightning_logs")  # version_N per attempt
    mode = wandb_mode(str(lc.mode))
    id_file = run_dir / "wandb_run_id.txt"
    if id_file.is_file():
        run_id = id_file.read_text().strip()
    else:
        run_id = uuid.uuid4().hex[:12]  # wandb run ids: [a-z0-9], chosen by us so requeues can reuse it
        atomic_write_text(id_file, run_id + "\n")  # a resumed (requeued) job continues the same wandb run
    return WandbLogger(project=lc.project, entity=lc.entity, group=lc.group, tags=list(lc.tags), id=run_id,
                       resume="allow", mode=mode, save_dir=str(run_dir), config=scrub(resolved_config),
                       name=run_dir.name)
