"""`python -m train [experiment=demo] run_dir=<dir> [trainer.max_steps=N] [resume=auto|none|<ckpt>]`."""

from __future__ import annotations

import errno
import os
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from common.checkpoint import CheckpointError
from common.config import ConfigError
from common.lock import LockedError
from data_prep.errors import PrepError
from tasks.base import TaskError

from . import config as _schema  # noqa: F401  registers train's config schema before Hydra composes
from .config import SWEEP_ENV, job_run_dir
from .module import TrainingDiverged
from .run import run
from .sampler import ResumeError


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> None:
    hc = HydraConfig.get() if HydraConfig.initialized() else None  # None: called directly (tests)
    if hc is not None and hc.mode == RunMode.MULTIRUN and os.environ.get(SWEEP_ENV) == "1":
        # one run directory per job of a sweep: no job resumes or overwrites another's
        cfg.run_dir = job_run_dir(cfg.run_dir, hc.job.num, list(hc.overrides.task))
    try:
        result = run(cfg)
    except (ConfigError, CheckpointError, ResumeError, TrainingDiverged, TaskError, FileNotFoundError,
            LockedError, PrepError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        print(f"error: {e.strerror or e}", file=sys.stderr)  # common.atomic's one line: file, space left
        sys.exit(1)
    print(f"{result.state} at step {result.step}; run dir {result.run_dir}"
          + ("; requeued, the next attempt resumes from the last checkpoint" if result.requeued else ""))
    if result.requeued:
        # Not a return: submitit (Hydra's Slurm launcher) would record this attempt's result as the
        # job's and stop waiting; SystemExit(0) records nothing, so it waits for the requeued attempt.
        raise SystemExit(0)


if __name__ == "__main__":
    main()
