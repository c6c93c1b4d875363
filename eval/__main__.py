"""`python -m eval task=<...> (checkpoint=<ckpt> | predictions=<jsonl>) out_dir=<dir>`."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from common.config import ConfigError
from eval import config as _schema  # noqa: F401  registers eval's config schema before Hydra composes
from eval.app import run
from eval.errors import EvalError
from tasks.base import TaskError


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    try:
        run(cfg)
    except (ConfigError, EvalError, TaskError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
