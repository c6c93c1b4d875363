"""`run(cfg)`: the evaluation app behind `python -m eval` (Hydra wrapper in eval/__main__.py)."""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

from omegaconf import DictConfig
from tqdm import tqdm

from eval import contamination, report
from eval.config import EvalConfig, build_config
from eval.errors import ConfigError
from eval.files import read_predictions, write_predictions
from eval.hoc import HoC
from eval.pubmedqa import ANSWER_PREFIX, LABELS, PubMedQA, PubMedQAFiles
from eval.relation import BC5CDR, DDI, KDDTI

log = logging.getLogger(__name__)


def make_benchmark(cfg: EvalConfig):
    f, d = cfg.task.files, cfg.data_dir
    try:
        if cfg.task.name == "pubmedqa":
            return PubMedQA(d, PubMedQAFiles(**f))
        if cfg.task.name == "bc5cdr":
            return BC5CDR(d, **f)
        if cfg.task.name == "ddi":
            return DDI(d, **f)
        if cfg.task.name == "kd_dti":
            return KDDTI(d, **f)
        if cfg.task.name == "hoc":
            return HoC(d, **f)
    except TypeError as e:  # a misspelled key under task.files
        raise ConfigError("task.files", f"{e}; see conf/eval_task/{cfg.task.name}.yaml") from e
    raise ConfigError("task", f"{cfg.task.name!r} is not a scored benchmark")


def _guard(cfg: EvalConfig, loaded, pmids: set[str]) -> list[str]:
    manifest = cfg.train_manifest or contamination.manifest_from_info(loaded.info)
    overlap = contamination.check(cfg.task.name, pmids, manifest, cfg.allow_contaminated)
    if overlap:
        log.warning("evaluating despite %d test PMIDs in the training data (allow_contaminated=true)", len(overlap))
    return overlap


def _predict(cfg: EvalConfig, bench, loaded, ids: list[str]) -> dict[str, str]:
    """Model outputs in BioGPT's target format, one per test id."""
    import torch

    from eval.modeling import continuation_logprobs
    from eval.prompts import source_ids
    from eval.sampling import generate_texts

    fmt = cfg.task.prompt_format
    out: dict[str, str] = {}
    if cfg.task.mode == "likelihood":
        prefix = loaded.codec.encode(" " + ANSWER_PREFIX)
        options = [loaded.codec.encode(f" {label}.") for label in LABELS]
        room = loaded.max_len - len(prefix) - max(map(len, options))
        for key in tqdm(ids, desc=f"{cfg.task.name} (likelihood)", unit="item"):
            scores = continuation_logprobs(loaded, source_ids(loaded, bench, key, fmt, room) + prefix, options)
            out[key] = f"{ANSWER_PREFIX} {LABELS[max(range(len(LABELS)), key=scores.__getitem__)]}."
        return out
    gen = torch.Generator(device=loaded.device).manual_seed(cfg.seed)
    bs, room = cfg.generation.batch_size, loaded.max_len - cfg.generation.max_new_tokens
    for first in tqdm(range(0, len(ids), bs), desc=f"{cfg.task.name} (generate)", unit="batch"):
        batch = ids[first: first + bs]
        rows = [source_ids(loaded, bench, k, fmt, room) for k in batch]
        out.update(zip(batch, generate_texts(loaded, rows, cfg.generation, gen), strict=True))
    return out


def _scored(cfg: EvalConfig) -> tuple[dict, list[dict]]:
    bench = make_benchmark(cfg)
    ids = bench.ids()[: cfg.limit] if cfg.limit else bench.ids()
    overlap: list[str] = []
    if cfg.predictions is not None:
        predictions, source = read_predictions(cfg.predictions), str(cfg.predictions)
    else:
        from eval.modeling import load

        loaded = load(cfg.checkpoint, cfg.device, cfg.dtype)
        overlap = _guard(cfg, loaded, bench.pmids())
        predictions, source = _predict(cfg, bench, loaded, ids), str(cfg.checkpoint)
        write_predictions(cfg.out_dir / "predictions.jsonl", predictions.items())
    score = bench.score(predictions, ids, source)
    results = {"task": cfg.task.name, "mode": cfg.task.mode if cfg.checkpoint else "predictions",
               "prompt_format": cfg.task.prompt_format if cfg.checkpoint else None,
               "source": source, "limit": cfg.limit, "data_dir": str(cfg.data_dir),
               "metrics": score.metrics, "counts": score.counts, "extra": score.extra}
    if overlap:
        results["contaminated_pmids"] = overlap
    return results, score.items


def _perplexity(cfg: EvalConfig) -> dict:
    from eval.modeling import load
    from eval.perplexity import evaluate, open_shards

    loaded = load(cfg.checkpoint, cfg.device, cfg.dtype)
    data = cfg.task.data or cfg.train_manifest or contamination.manifest_from_info(loaded.info)
    if data is None:
        raise ConfigError("task.data", "the checkpoint records no data folder; pass task.data=<data_prep out_dir>")
    shards = open_shards(Path(data), cfg.task.split)
    block = cfg.task.block_size or loaded.max_len
    if block > loaded.max_len:
        raise ConfigError("task.block_size", f"{block} is longer than the model's {loaded.max_len} tokens")
    limit = cfg.task.max_windows or cfg.limit
    r = evaluate(loaded, shards, block, cfg.task.batch_size, limit)
    return {"task": "perplexity", "mode": "score", "source": str(cfg.checkpoint), "limit": limit,
            "data": str(data), "split": cfg.task.split, "block_size": block,
            "metrics": r.metrics(), "counts": r.counts(), "extra": {}}


def _generate(cfg: EvalConfig) -> tuple[dict, list[dict]]:
    import torch

    from eval.modeling import load
    from eval.sampling import generate_texts, text_prompt

    loaded = load(cfg.checkpoint, cfg.device, cfg.dtype)
    if cfg.task.prompts_file:
        prompts = [p for p in cfg.task.prompts_file.read_text(encoding="utf-8").splitlines() if p.strip()]
    else:
        prompts = [cfg.task.prompt]
    prompts = prompts[: cfg.limit] if cfg.limit else prompts
    gen = torch.Generator(device=loaded.device).manual_seed(cfg.seed)
    texts: list[str] = []
    bs = cfg.generation.batch_size
    for first in tqdm(range(0, len(prompts), bs), desc="generate", unit="batch"):
        rows = [text_prompt(loaded, p, cfg.generation.max_new_tokens) for p in prompts[first: first + bs]]
        texts += generate_texts(loaded, rows, cfg.generation, gen)
    items = [{"id": i, "prompt": p, "generation": t} for i, (p, t) in enumerate(zip(prompts, texts, strict=True))]
    return ({"task": "generate", "mode": "generate", "source": str(cfg.checkpoint), "limit": cfg.limit,
             "metrics": {}, "counts": {"prompts": len(items)}, "generation": asdict(cfg.generation),
             "extra": {}, "generations": items}, items)


def run(cfg: DictConfig | EvalConfig) -> dict:
    """Evaluate and write results.json / results.md under out_dir; returns the results dict."""
    c = cfg if isinstance(cfg, EvalConfig) else build_config(cfg)
    c.out_dir.mkdir(parents=True, exist_ok=True)
    items: list[dict] | None
    if c.task.name == "perplexity":
        results, items = _perplexity(c), None
    elif c.task.name == "generate":
        results, items = _generate(c)
    else:
        results, items = _scored(c)
    report.write(c.out_dir, results, items)
    log.info("%s: %s -> %s", c.task.name, {k: round(v, 4) for k, v in results["metrics"].items()}, c.out_dir / "results.json")
    return results
