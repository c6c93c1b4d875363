"""`python -m data_prep ...`: the thin Hydra wrapper around `data_prep.pipeline.run`."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from data_prep.errors import PrepError

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


@hydra.main(config_path=CONF_DIR, config_name="prep", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from data_prep.pipeline import run

    try:
        run(cfg)
    except PrepError as e:  # one clear line, not a traceback
        print(f"data_prep: error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
