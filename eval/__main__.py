"""`python -m eval task=<...> (checkpoint=<ckpt> | predictions=<jsonl>) out_dir=<dir>`."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from eval import TASKS
from eval.config import rewrite_overrides
from eval.errors import EvalError

CONFIG_PATH = "../conf"


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="eval")
def main(cfg: DictConfig) -> None:
    from eval.app import run

    try:
        run(cfg)
    except EvalError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    try:
        args = rewrite_overrides(sys.argv[1:])
    except EvalError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    hydra_flags = any(a.startswith("-") for a in args)  # --help, --cfg job, ...: let Hydra answer
    if not hydra_flags and not any(a.startswith("eval_task@task=") for a in args):
        print(f"error: config key 'task': missing; pass task=<{'|'.join(TASKS)}>", file=sys.stderr)
        sys.exit(2)
    if not hydra_flags and not any(a.startswith("out_dir=") for a in args):
        print("error: config key 'out_dir': missing; pass out_dir=<folder for results.json and results.md>", file=sys.stderr)
        sys.exit(2)
    sys.argv = [sys.argv[0], *args]
    main()
