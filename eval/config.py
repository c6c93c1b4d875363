"""The typed evaluation config, built and checked before any work starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from eval import TASKS
from eval.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]
MODES = {"pubmedqa": ("likelihood", "generate")}


@dataclass(frozen=True)
class GenerationConfig:
    max_new_tokens: int = 64
    greedy: bool = True
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    batch_size: int = 8  # prompts generated together (left-padded)


@dataclass(frozen=True)
class TaskConfig:
    name: str
    mode: str = "generate"
    prompt_format: str = "train"  # train | biogpt: the source format a checkpoint gets (eval/prompts.py)
    files: dict[str, str] = field(default_factory=dict)
    # perplexity
    data: Path | None = None
    split: str = "val"
    block_size: int | None = None
    batch_size: int = 8
    max_windows: int | None = None
    # generate
    prompt: str | None = None
    prompts_file: Path | None = None


@dataclass(frozen=True)
class EvalConfig:
    task: TaskConfig
    out_dir: Path
    data_dir: Path
    checkpoint: Path | None = None
    predictions: Path | None = None
    limit: int | None = None
    device: str = "auto"
    dtype: str = "auto"
    seed: int = 0
    allow_contaminated: bool = False
    train_manifest: Path | None = None
    generation: GenerationConfig = GenerationConfig()


def _path(value, base: Path | None = None) -> Path | None:
    """User paths are relative to the working directory; `base` for those documented otherwise."""
    if value in (None, ""):
        return None
    p = Path(str(value)).expanduser()
    return p if p.is_absolute() else (base or Path.cwd()) / p


def _positive(key: str, value, allow_none: bool = True) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(key, f"must be a positive integer, got {value!r}")
    return value


def build_config(cfg: DictConfig) -> EvalConfig:
    """DictConfig -> EvalConfig, raising ConfigError (naming the key) on the first bad value."""
    if "task" not in cfg or OmegaConf.is_missing(cfg, "task") or not isinstance(cfg.task, DictConfig):
        raise ConfigError("task", f"missing; pass task=<{'|'.join(TASKS)}>")
    raw = OmegaConf.to_container(cfg, resolve=True)
    t = raw["task"]
    name = t.get("name")
    if name not in TASKS:
        raise ConfigError("task", f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    mode = t.get("mode", "generate")
    allowed = MODES.get(name, ("generate",) if name != "perplexity" else ("score",))
    if mode not in allowed:
        raise ConfigError("task.mode", f"{mode!r} is not a mode of {name}; choose one of {', '.join(allowed)}")
    prompt_format = t.get("prompt_format", "train")
    if prompt_format not in ("train", "biogpt"):
        raise ConfigError("task.prompt_format", f"{prompt_format!r}; use train (train/'s fine-tuning source) or biogpt")
    known_task = set(TaskConfig.__dataclass_fields__) | {"max_new_tokens"}
    extra = set(t) - known_task
    if extra:
        raise ConfigError(f"task.{sorted(extra)[0]}", f"unknown key for task {name}")
    task = TaskConfig(
        name=name, mode=mode, prompt_format=prompt_format, files=dict(t.get("files") or {}), data=_path(t.get("data")),
        split=str(t.get("split", "val")), block_size=_positive("task.block_size", t.get("block_size")),
        batch_size=_positive("task.batch_size", t.get("batch_size", 8), allow_none=False),
        max_windows=_positive("task.max_windows", t.get("max_windows")),
        prompt=t.get("prompt"), prompts_file=_path(t.get("prompts_file")),
    )

    if raw.get("out_dir") in (None, "", "???"):
        raise ConfigError("out_dir", "missing; pass out_dir=<folder for results.json and results.md>")
    checkpoint, predictions = _path(raw.get("checkpoint")), _path(raw.get("predictions"))
    if checkpoint and predictions:
        raise ConfigError("predictions", "give either checkpoint=<ckpt> or predictions=<jsonl>, not both")
    if name in ("perplexity", "generate"):
        if predictions:
            raise ConfigError("predictions", f"task {name} needs a model: pass checkpoint=<ckpt>")
        if not checkpoint:
            raise ConfigError("checkpoint", f"task {name} needs checkpoint=<ckpt>")
    elif not (checkpoint or predictions):
        raise ConfigError("checkpoint", "pass checkpoint=<ckpt> to run a model, or predictions=<jsonl> to score a file")
    if checkpoint and not checkpoint.exists():
        raise ConfigError("checkpoint", f"{checkpoint} does not exist; pass the path of a checkpoint written by train/")
    if name == "generate" and not (task.prompt or task.prompts_file):
        raise ConfigError("task.prompt", "task generate needs task.prompt='<text>' or task.prompts_file=<txt>")
    if task.prompts_file and not task.prompts_file.is_file():
        raise ConfigError("task.prompts_file", f"{task.prompts_file} does not exist")

    g = dict(raw.get("generation") or {})
    unknown_g = set(g) - set(GenerationConfig.__dataclass_fields__)
    if unknown_g:
        raise ConfigError(f"generation.{sorted(unknown_g)[0]}", "unknown key")
    max_new = g.get("max_new_tokens") or t.get("max_new_tokens") or 64
    temperature = g.get("temperature", 1.0)
    if not isinstance(temperature, int | float) or temperature <= 0:
        raise ConfigError("generation.temperature", f"must be > 0, got {temperature!r}")
    top_p = g.get("top_p")
    if top_p is not None and not (isinstance(top_p, int | float) and 0 < top_p <= 1):
        raise ConfigError("generation.top_p", f"must be in (0, 1], got {top_p!r}")
    gen = GenerationConfig(
        max_new_tokens=_positive("generation.max_new_tokens", max_new, allow_none=False),
        greedy=bool(g.get("greedy", True)), temperature=float(temperature),
        top_k=_positive("generation.top_k", g.get("top_k")), top_p=top_p,
        batch_size=_positive("generation.batch_size", g.get("batch_size", 8), allow_none=False),
    )
    device = str(raw.get("device", "auto"))
    if not (device in ("auto", "cpu", "cuda") or device.startswith("cuda:")):
        raise ConfigError("device", f"{device!r}; use auto, cpu, cuda or cuda:N")
    dtype = str(raw.get("dtype", "auto"))
    if dtype not in ("auto", "float32", "bfloat16", "float16"):
        raise ConfigError("dtype", f"{dtype!r}; use auto, float32, bfloat16 or float16")
    return EvalConfig(
        task=task, out_dir=_path(raw["out_dir"]), data_dir=_path(raw.get("data_dir") or "../shared/data", REPO_ROOT).resolve(),
        checkpoint=checkpoint, predictions=predictions, limit=_positive("limit", raw.get("limit")),
        device=device, dtype=dtype, seed=int(raw.get("seed", 0)),
        allow_contaminated=bool(raw.get("allow_contaminated", False)),
        train_manifest=_path(raw.get("train_manifest")), generation=gen,
    )


def rewrite_overrides(argv: list[str]) -> list[str]:
    """`task=X` -> `eval_task@task=X`: train/'s conf/task/ group would otherwise claim the key.

    An unknown task fails here with the key named, before Hydra composes anything.
    """
    out = []
    for arg in argv:
        if arg.startswith("task="):
            value = arg.split("=", 1)[1]
            for name in value.split(","):  # a comma list is a multirun sweep (-m)
                if name not in TASKS:
                    raise ConfigError("task", f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
            arg = f"eval_task@task={value}"
        out.append(arg)
    return out


def compose(overrides: list[str]) -> DictConfig:
    """The config `python -m eval <overrides>` would run with (for tests and notebooks)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        return hydra_compose(config_name="eval", overrides=rewrite_overrides(overrides))
