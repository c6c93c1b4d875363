"""Submit data prep and training to Slurm with the resources read from the composed Hydra config.

    python slurm/submit.py pretrain experiment=biogpt_8gpu run_dir=/scratch/me/biogpt-8gpu
    python slurm/submit.py pretrain experiment=biogpt_8gpu trainer.num_nodes=4 run_dir=...   # multi-node
    python slurm/submit.py prep source=pubmed_baseline out_dir=/scratch/me/pubmed task.count=32 workers=4
    python slurm/submit.py --dry-run pretrain ...      # print the sbatch command lines, submit nothing
    python slurm/submit.py refresh experiment=biogpt_continue task.data_dir=/scratch/me/pubmed run_dir=/scratch/me/refresh

The arguments after the job kind are exactly the overrides `python -m train` / `python -m data_prep`
take. They are composed here first (so a typo fails now, not after a day in the queue), then:

  pretrain  --nodes = trainer.num_nodes, --ntasks-per-node = trainer.devices,
            --gpus-per-node = trainer.devices (GPU accelerators only),
            --cpus-per-task = data.num_workers + 1; slurm/pretrain.sbatch on one node,
            slurm/pretrain_multinode.sbatch on several. Log: <run_dir>/slurm-<jobid>.out.
  prep      prep_fetch.sbatch, then prep_map.sbatch as --array=0-(task.count-1) (afterok the
            fetch), then prep_merge.sbatch (afterok the whole array); --cpus-per-task = workers for both.
            Logs: <out_dir>/slurm/.
  refresh   one cycle of continued pretraining (docs/slurm.md): prep_append.sbatch (the source's
            new files -> the next generation of task.data_dir, every other setting from the corpus's
            config; a --prep override contradicting it fails here), then pretrain.sbatch with
            task.init_from = <run_dir>/latest's last.ckpt (or --init-from) in run_dir=<run_dir>/<cycle>
            (afterok), then refresh_eval.sbatch (afterok): perplexity per generation of the new and
            the previous model, then <run_dir>/latest -> the cycle. Logs: <run_dir>/<cycle>/.

Slurm options that are site policy, not config (partition, account, time limit, QoS) go before the
job kind: --partition, --account, --time, --qos, or any sbatch option through --sbatch=...
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SLURM_DIR = ROOT / "slurm"
CONF_DIR = ROOT / "conf"
GPU_ACCELERATORS = ("gpu", "cuda")
# Overrides the templates set themselves (last on the command line, so they win): a user value
# for them is dropped here with a note rather than silently ignored.
PREP_OWNED = ("stage", "task.index", "task.count")
TRAIN_OWNED = ("trainer.requeue_on_signal",)
# refresh: what the prep step appends unless --prep says otherwise (PubMed's update files newer
# than the corpus's newest)
REFRESH_PREP = ("source=pubmed_updates", "source.after=corpus")


class SubmitError(RuntimeError):
    """A config value cannot be turned into a valid Slurm request; the message names the key."""


@dataclass(frozen=True)
class TrainResources:
    nodes: int
    tasks_per_node: int
    gpus_per_node: int | None
    cpus_per_task: int

    def sbatch_args(self) -> list[str]:
        args = [f"--nodes={self.nodes}", f"--ntasks-per-node={self.tasks_per_node}",
                f"--cpus-per-task={self.cpus_per_task}"]
        if self.gpus_per_node:
            args.append(f"--gpus-per-node={self.gpus_per_node}")
        return args


@dataclass
class Submission:
    """One sbatch call: its arguments, the template, the job overrides, and where its id goes."""

    name: str
    sbatch_args: list[str]
    template: Path
    overrides: list[str]
    depends_on: str | None = None  # name of an earlier Submission (afterok)
    log_dir: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    def argv(self, job_ids: dict[str, str]) -> list[str]:
        args = ["sbatch", "--parsable", *self.sbatch_args]
        if self.depends_on is not None:
            dep = job_ids.get(self.depends_on, f"${self.depends_on.upper()}_JOB")
            args.append(f"--dependency=afterok:{dep}")
        if self.env:
            args.append("--export=" + ",".join(["ALL", *(f"{k}={v}" for k, v in sorted(self.env.items()))]))
        return [*args, str(self.template), *self.overrides]


# ---- config ------------------------------------------------------------------------------------

def compose(config_name: str, overrides: Sequence[str]) -> Any:
    """The config `python -m <app>` would see, composed from conf/ with the same overrides."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if config_name == "prep":  # conf/prep.yaml names its schemas, which live in Hydra's ConfigStore
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        from data_prep.config import register_schemas

        register_schemas()
    elif config_name == "train":  # conf/train.yaml composes on the schema train/config.py registers on import
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        import train.config  # noqa: F401
    elif config_name == "eval":  # likewise conf/eval.yaml and eval/config.py
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        import eval.config  # noqa: F401
    try:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            return hydra_compose(config_name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as e:
        msg = " ".join(str(e).split())
        raise SubmitError(f"conf/{config_name}.yaml with {' '.join(overrides) or 'no overrides'}: {msg}") from None


def validate(config_name: str, cfg: Any) -> None:
    """The app's own typed check, so a wrong value fails at submission, naming its key."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # `python slurm/submit.py` puts slurm/, not the repo, on the path
    if config_name == "train":
        from train.config import ConfigError, TrainConfig

        try:
            TrainConfig.from_omegaconf(cfg)
        except ConfigError as e:
            raise SubmitError(str(e)) from None
    else:
        from data_prep.config import build_config
        from data_prep.errors import PrepError

        try:
            build_config(cfg)
        except (PrepError, ValueError) as e:
            raise SubmitError(str(e)) from None


def validate_append(cfg: Any, overrides: Sequence[str]) -> None:
    """An append's overrides against the corpus in out_dir, when it holds one already: the job takes
    every setting it is not given from the corpus's config and refuses one given another value
    (data_prep/pipeline/append.py), so such a value fails now, naming its key, not in the queue."""
    from data_prep.config import build_config
    from data_prep.errors import PrepError
    from data_prep.pipeline.append import append_config

    try:
        built = build_config(cfg)
        if (built.out_path / "manifest.json").is_file():
            append_config(built, overrides)
    except (PrepError, ValueError) as e:
        raise SubmitError(str(e)) from None


def _positive_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SubmitError(f"config key '{key}': Slurm needs a number >= 1 here, got {value!r}")
    return value


def train_resources(cfg: Any) -> TrainResources:
    """One Slurm task per device (what SLURMEnvironment expects), `devices` GPUs on every node."""
    devices = _positive_int(cfg.trainer.devices, "trainer.devices")
    nodes = _positive_int(cfg.trainer.num_nodes, "trainer.num_nodes")
    workers = cfg.data.num_workers
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise SubmitError(f"config key 'data.num_workers': must be an integer >= 0, got {workers!r}")
    gpus = devices if str(cfg.trainer.accelerator).lower() in GPU_ACCELERATORS else None
    return TrainResources(nodes=nodes, tasks_per_node=devices, gpus_per_node=gpus, cpus_per_task=workers + 1)


def _split_owned(overrides: Sequence[str], owned: Sequence[str]) -> tuple[list[str], list[str]]:
    keep, dropped = [], []
    for o in overrides:
        key = o.split("=", 1)[0].lstrip("+~")
        (dropped if key in owned else keep).append(o)
    return keep, dropped


def _abs_path(value: Any, key: str) -> Path:
    if value in (None, "", "???"):
        raise SubmitError(f"config key '{key}': required (a directory every node can see)")
    return Path(str(value)).expanduser().resolve()


def _job_env() -> dict[str, str]:
    """What the templates need to find the project: its root and its Python (the repo's .venv)."""
    venv = ROOT / ".venv" / "bin" / "python"
    return {"BIOGPT_ROOT": str(ROOT), "BIOGPT_PYTHON": str(venv) if venv.is_file() else sys.executable}


# ---- plans -------------------------------------------------------------------------------------

def plan_pretrain(overrides: Sequence[str], site_args: Sequence[str], template: str | None = None) -> list[Submission]:
    overrides, dropped = _split_owned(overrides, TRAIN_OWNED)
    for o in dropped:
        print(f"submit: ignoring {o}: under the templates the batch shell requeues (docs/slurm.md)", file=sys.stderr)
    cfg = compose("train", overrides)
    validate("train", cfg)
    res = train_resources(cfg)
    run_dir = _abs_path(cfg.run_dir, "run_dir")
    if template is None:
        template = "pretrain_multinode.sbatch" if res.nodes > 1 else "pretrain.sbatch"
    # run_dir passed once, absolute: the job runs in this directory, but --output must be absolute.
    overrides, _ = _split_owned(overrides, ("run_dir",))
    return [Submission(
        name="pretrain", template=SLURM_DIR / template,
        sbatch_args=[*res.sbatch_args(), f"--chdir={os.getcwd()}", f"--output={run_dir}/slurm-%j.out",
                     *site_args],
        overrides=[*overrides, f"run_dir={run_dir}"], log_dir=run_dir, env=_job_env())]


def plan_prep(overrides: Sequence[str], site_args: Sequence[str]) -> list[Submission]:
    # Validated as one map task would see it (task.count > 1 is only valid with stage=map).
    cfg = compose("prep", [*overrides, "stage=map", "task.index=0"])
    validate("prep", cfg)
    count = _positive_int(cfg.task.count, "task.count")
    workers = _positive_int(cfg.workers, "workers")
    out_dir = _abs_path(cfg.out_dir, "out_dir")
    overrides, _ = _split_owned(overrides, (*PREP_OWNED, "out_dir"))  # templates set stage/task; out_dir absolute
    overrides = [*overrides, f"out_dir={out_dir}"]
    log_dir = out_dir / "slurm"
    common = [f"--chdir={os.getcwd()}", *site_args]
    env = _job_env()
    return [
        Submission("fetch", [*common, "--cpus-per-task=1", f"--output={log_dir}/%x-%j.out"],
                   SLURM_DIR / "prep_fetch.sbatch", overrides, log_dir=log_dir, env=env),
        Submission("map", [*common, f"--array=0-{count - 1}", f"--cpus-per-task={workers}",
                           f"--output={log_dir}/%x-%A_%a.out"],
                   SLURM_DIR / "prep_map.sbatch", overrides, depends_on="fetch", log_dir=log_dir, env=env),
        # The reduce writes documents parts and encodes shards in `workers` processes too.
        Submission("merge", [*common, f"--cpus-per-task={workers}", f"--output={log_dir}/%x-%j.out"],
                   SLURM_DIR / "prep_merge.sbatch", overrides, depends_on="map", log_dir=log_dir, env=env),
    ]


def _override_keys(overrides: Sequence[str]) -> set[str]:
    return {o.split("=", 1)[0].lstrip("+~") for o in overrides}


def plan_refresh(overrides: Sequence[str], site_args: Sequence[str], prep: Sequence[str] = (),
                 eval_overrides: Sequence[str] = (), init_from: str | None = None,
                 cycle: str | None = None) -> list[Submission]:
    """One refresh cycle: append -> continued pretraining -> evaluation, each afterok the one before.

    `overrides` are `python -m train` overrides, with run_dir = the refresh root: the cycle trains in
    <run_dir>/<cycle> (default: today's UTC date) from `init_from` (default: the checkpoint that
    <run_dir>/latest points to, resolved now, so a later cycle moving `latest` changes nothing here)."""
    import datetime

    overrides = list(overrides)
    if _override_keys(overrides) & {"task.init_from", "resume"}:
        raise SubmitError("refresh sets task.init_from (from <run_dir>/latest, or --init-from) and resumes by itself; "
                          "leave task.init_from and resume out of the overrides")
    base = compose("train", overrides)
    root = _abs_path(base.run_dir, "run_dir")
    data = _abs_path(base.task.data_dir, "task.data_dir")
    latest = root / "latest"
    if init_from is None:
        if not (latest / "checkpoints" / "last.ckpt").is_file():
            raise SubmitError(f"{latest}/checkpoints/last.ckpt does not exist: this is the first cycle; pass "
                              "--init-from=<the checkpoint to continue from> (e.g. your pretraining run's last.ckpt)")
        init_from = str(latest / "checkpoints" / "last.ckpt")
    previous = Path(init_from).expanduser().resolve()
    if not previous.is_file():
        raise SubmitError(f"--init-from={init_from}: no such checkpoint")
    name = cycle or datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    if "/" in name or name in ("", ".", "..", "latest"):
        raise SubmitError(f"--cycle={name!r}: a plain folder name other than 'latest'")
    run_dir = root / name
    if (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir()):
        raise SubmitError(f"{run_dir} already holds a training run: pass --cycle=<another name> (a resubmitted cycle "
                          "would append another generation under a run that resumes on the corpus it started with)")
    train, _ = _split_owned(overrides, ("run_dir", "task.data_dir"))  # passed once below, absolute
    train, dropped = _split_owned(train, TRAIN_OWNED)
    for o in dropped:
        print(f"submit: ignoring {o}: under the templates the batch shell requeues (docs/slurm.md)", file=sys.stderr)
    train = [*train, f"task.init_from={previous}", f"task.data_dir={data}", f"run_dir={run_dir}"]
    cfg = compose("train", train)
    validate("train", cfg)
    res = train_resources(cfg)
    # the default source comes whole: another source (--prep=source=...) brings its own settings
    defaults = REFRESH_PREP if "source" not in _override_keys(prep) else ()
    prep = [*defaults, *(o for o in prep if not o.startswith("out_dir=")), f"out_dir={data}"]
    prep_cfg = compose("prep", [*prep, "append=true"])
    validate("prep", prep_cfg)
    validate_append(prep_cfg, [*prep, "append=true"])  # prep_append.sbatch adds append=true
    if eval_overrides:  # a misspelt key fails now; the checkpoint itself does not exist yet
        compose("eval", ["task=perplexity", *eval_overrides])
    common = [f"--chdir={os.getcwd()}", *site_args]
    env = _job_env()
    template = "pretrain_multinode.sbatch" if res.nodes > 1 else "pretrain.sbatch"
    return [
        Submission("prep", [*common, "--cpus-per-task=1", f"--output={run_dir}/slurm-prep-%j.out"],
                   SLURM_DIR / "prep_append.sbatch", prep, log_dir=run_dir, env=env),
        Submission("pretrain", [*res.sbatch_args(), *common, f"--output={run_dir}/slurm-%j.out"],
                   SLURM_DIR / template, train, depends_on="prep", log_dir=run_dir, env=env),
        Submission("eval", [*common, "--cpus-per-task=1", *(["--gpus-per-node=1"] if res.gpus_per_node else []),
                            f"--output={run_dir}/slurm-eval-%j.out"],
                   SLURM_DIR / "refresh_eval.sbatch", [str(data), str(previous), str(run_dir), str(latest),
                                                        *eval_overrides],
                   depends_on="pretrain", log_dir=run_dir, env=env),
    ]


def submit(plan: Sequence[Submission], dry_run: bool = False) -> dict[str, str]:
    """Run sbatch for each submission in order (dependencies by job id); return name -> job id."""
    ids: dict[str, str] = {}
    for s in plan:
        argv = s.argv(ids)
        if dry_run:
            print(shlex.join(argv))
            continue
        if s.log_dir is not None:
            s.log_dir.mkdir(parents=True, exist_ok=True)  # Slurm does not create the log's folder
        try:
            out = subprocess.run(argv, check=True, capture_output=True, text=True)
        except FileNotFoundError:
            raise SubmitError("sbatch not found: run this on a Slurm login node (or slurm/local-cluster.sh up)") from None
        except subprocess.CalledProcessError as e:
            raise SubmitError(f"sbatch {s.template.name} failed: {e.stderr.strip() or e.stdout.strip()}") from None
        ids[s.name] = out.stdout.strip().split(";")[0]  # "--parsable" prints "id[;cluster]"
        print(f"submitted {s.name}: job {ids[s.name]} ({s.template.name})")
    return ids


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--dry-run", action="store_true", help="print the sbatch command lines, submit nothing")
    p.add_argument("--partition", help="sbatch --partition")
    p.add_argument("--account", help="sbatch --account")
    p.add_argument("--time", help="sbatch --time (e.g. 48:00:00)")
    p.add_argument("--qos", help="sbatch --qos")
    p.add_argument("--sbatch", action="append", default=[], metavar="OPTION",
                   help="any other sbatch option, e.g. --sbatch=--constraint=a100 (repeatable)")
    p.add_argument("--template", help="pretrain only: a template in slurm/ instead of the one chosen by num_nodes")
    p.add_argument("--prep", action="append", default=[], metavar="OVERRIDE",
                   help="refresh only: a python -m data_prep override for the append (repeatable; without "
                        "source=...: " + " ".join(REFRESH_PREP) + ")")
    p.add_argument("--eval", action="append", default=[], metavar="OVERRIDE",
                   help="refresh only: a python -m eval override for the evaluations (repeatable)")
    p.add_argument("--init-from", help="refresh only: the checkpoint to continue (default: <run_dir>/latest's last.ckpt)")
    p.add_argument("--cycle", help="refresh only: the cycle's folder under run_dir (default: today's UTC date)")
    p.add_argument("kind", choices=("pretrain", "prep", "refresh"))
    p.add_argument("overrides", nargs="*", help="Hydra overrides, as for python -m train / python -m data_prep")
    args = p.parse_args(argv)
    site = [f"--{k}={v}" for k in ("partition", "account", "time", "qos") if (v := getattr(args, k))]
    site += args.sbatch
    try:
        refresh_only = [f"--{k.replace('_', '-')}" for k in ("prep", "eval", "init_from", "cycle") if getattr(args, k)]
        if refresh_only and args.kind != "refresh":
            raise SubmitError(f"{', '.join(refresh_only)} apply to refresh only")
        if args.template and args.kind != "pretrain":
            raise SubmitError("--template applies to pretrain only")
        if args.kind == "pretrain":
            plan = plan_pretrain(args.overrides, site, args.template)
        elif args.kind == "refresh":
            plan = plan_refresh(args.overrides, site, args.prep, args.eval, args.init_from, args.cycle)
        else:
            plan = plan_prep(args.overrides, site)
        submit(plan, args.dry_run)
    except SubmitError as e:
        print(f"submit: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
