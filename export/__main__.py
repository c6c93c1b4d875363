"""`python -m export checkpoint=<run_dir>/checkpoints/last.ckpt out_dir=<folder> [format=auto|biogpt|remote_code]`."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from export.cli import exit_on_bad_config
from export.config import register, validate

register()  # the schema of conf/export.yaml, before Hydra composes it


@hydra.main(version_base="1.3", config_path="../conf", config_name="export")
def main(cfg: DictConfig) -> None:
    from common.checkpoint import CheckpointError
    from common.config import ConfigError
    from export.app import run
    from export.hf import ExportError

    try:
        r = run(cfg)
    except (ConfigError, CheckpointError, ExportError, OSError, ValueError) as e:
        print(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
        sys.exit(2)
    print(f"exported as {r.format} to {r.out_dir} ({len(r.files)} files; {r.eval_results} eval results in the "
          f"model card; training data {'described' if r.data_known else 'unknown'})")


if __name__ == "__main__":
    exit_on_bad_config("export", validate)
    main()
