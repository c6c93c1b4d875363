"""`python -m serve checkpoint=<ckpt or exported folder> [host=127.0.0.1] [port=8000]`."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from export.cli import exit_on_bad_config
from serve.config import register, validate

register()  # the schema of conf/serve.yaml, before Hydra composes it


@hydra.main(version_base="1.3", config_path="../conf", config_name="serve")
def main(cfg: DictConfig) -> None:
    from common.checkpoint import CheckpointError
    from common.config import ConfigError
    from export.hf import ExportError
    from serve.server import run

    try:
        run(cfg)
    except (ConfigError, CheckpointError, ExportError, OSError, ValueError) as e:
        print(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    exit_on_bad_config("serve", validate)
    main()
