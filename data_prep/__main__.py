"""`python -m data_prep ...`: the thin Hydra wrapper around `data_prep.pipeline.driver.run`.

Hydra checks types, unknown keys and enum values while composing (the schemas registered by
`data_prep.config.register_schemas`); the callback `driver.CheckConfig` (named in conf/prep.yaml)
runs the remaining checks before Hydra writes anything into out_dir. Every expected failure (a bad
value, an unusable out_dir, a run already holding out_dir, a full disk) ends as one line on stderr
and exit status 2.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from common.config import ConfigError
from common.lock import LockedError
from data_prep.config import register_schemas
from data_prep.errors import PrepError
from data_prep.pipeline.driver import disk_full, fail, run

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


@hydra.main(config_path=CONF_DIR, config_name="prep", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        run(cfg, list(HydraConfig.get().overrides.task))  # append=true: the keys the user set
    except (ConfigError, PrepError, LockedError) as e:
        fail(e)
    except OSError as e:
        msg = disk_full(e)
        if msg is None:
            raise
        fail(PrepError(msg))  # run() removed the partial files before the error got here


if __name__ == "__main__":
    register_schemas()
    main()
