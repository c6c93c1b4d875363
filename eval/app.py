"""`run(cfg)`: the evaluation app behind `python -m eval` (Hydra wrapper in eval/__main__.py).

The task (tasks/<name>.py) says what its files are, how its sources read and how predictions are
scored; this module runs a model over it, or scores a prediction file. That path imports neither
torch nor Lightning: everything that needs the model is imported inside the functions that load one.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

from omegaconf import DictConfig
from tqdm import tqdm

from eval import report
from eval.config import ConfigError, Settings, build_config
from eval.files import read_predictions, write_predictions
from tasks.base import DataFileError, Kind, Mode, TestSet

log = logging.getLogger(__name__)


def _guard(s: Settings, loaded, pmids: set[str]) -> list[str]:
    from eval import contamination  # reads parquet (pyarrow): only needed with a checkpoint

    manifest = _path(s.cfg.train_manifest) or contamination.manifest_from_info(loaded.info)
    overlap = contamination.check(s.name, pmids, manifest, s.cfg.allow_contaminated)
    if overlap:
        log.warning("evaluating despite %d test PMIDs in the training data (allow_contaminated=true)", len(overlap))
    return overlap


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _predict(s: Settings, bench: TestSet, loaded, ids: list[str], picks: dict | None = None) -> dict[str, str]:
    """Model outputs in the task's target format, one per test id. Likelihood mode also fills
    `picks[id]` with the label chosen under each length normalisation (tasks.pubmedqa.likelihood_picks)."""
    import torch  # the checkpoint path only: scoring a prediction file must not load torch

    from eval.modeling import continuation_logprobs
    from eval.prompts import source_ids
    from eval.sampling import generate_texts

    task, fmt = s.task, s.cfg.task.prompt_format
    out: dict[str, str] = {}
    if s.cfg.task.mode == Mode.likelihood:
        prefix = loaded.codec.encode(" " + task.answer_prefix)
        options = [loaded.codec.encode(f" {label}.") for label in task.labels]
        room = loaded.max_len - len(prefix) - max(map(len, options))
        from tasks.pubmedqa import likelihood_picks

        n_bytes = [len(loaded.codec.decode(o).encode("utf-8")) for o in options]
        for key in tqdm(ids, desc=f"{task.name} (likelihood)", unit="item"):
            scores = continuation_logprobs(loaded, source_ids(loaded, bench, key, fmt, room) + prefix, options)
            chosen = likelihood_picks(scores, [len(o) for o in options], n_bytes)
            out[key] = task.target(task.labels[chosen["sum"]])
            if picks is not None:
                picks[key] = {norm: task.labels[i] for norm, i in chosen.items()}
        return out
    gen = torch.Generator(device=loaded.device).manual_seed(s.cfg.seed)
    bs, room = s.generation.batch_size, loaded.max_len - s.generation.max_new_tokens
    for first in tqdm(range(0, len(ids), bs), desc=f"{task.name} (generate)", unit="batch"):
        batch = ids[first: first + bs]
        rows = [source_ids(loaded, bench, k, fmt, room) for k in batch]
        out.update(zip(batch, generate_texts(loaded, rows, s.generation, gen), strict=True))
    return out


def _check_missing(s: Settings, predictions: dict, ids: list[str]) -> None:
    """Test ids without a prediction are scored as wrong: say how many, or refuse with strict_ids=true."""
    missing = [i for i in ids if i not in predictions]
    if not missing:
        return
    msg = (f"{s.predictions}: {len(missing)} of {len(ids)} test ids have no prediction "
           f"(e.g. {', '.join(missing[:3])}); they count as wrong")
    if s.cfg.strict_ids:
        raise DataFileError(s.predictions, msg.split(": ", 1)[1] + "; strict_ids=true makes this an error")
    log.warning("%s (strict_ids=true makes this an error)", msg)


def _scored(s: Settings) -> tuple[dict, list[dict]]:
    from eval.sampling import smoke_subset

    bench = s.task.test_set(s.files())
    ids = smoke_subset(bench, bench.ids(), s.cfg.limit, s.cfg.seed) if s.cfg.limit else bench.ids()
    overlap: list[str] = []
    picks: dict[str, dict[str, str]] = {}  # likelihood mode: the label under each length normalisation
    if s.predictions is not None:
        predictions, source = read_predictions(s.predictions, bench.read_prediction), str(s.predictions)
        _check_missing(s, predictions, ids)
    else:
        from eval.modeling import load  # torch

        loaded = load(s.checkpoint, s.cfg.device, str(s.cfg.dtype))
        overlap = _guard(s, loaded, bench.pmids())
        predictions, source = _predict(s, bench, loaded, ids, picks), str(s.checkpoint)
        write_predictions(s.out_dir / "predictions.jsonl", predictions.items())
    score = bench.score(predictions, ids, source)
    if picks and hasattr(bench, "normalised_accuracy"):
        score.metrics.update(bench.normalised_accuracy(picks, ids))
    results = {"task": s.name, "mode": str(s.cfg.task.mode) if s.checkpoint else "predictions",
               "prompt_format": str(s.cfg.task.prompt_format) if s.checkpoint else None,
               "source": source, "limit": s.cfg.limit, "data_dir": str(s.bench_dir),
               "metrics": score.metrics, "counts": score.counts, "extra": score.extra}
    if overlap:
        results["contaminated_pmids"] = overlap
    return results, score.items


def _perplexity(s: Settings) -> dict:
    from data_prep.tokens.shards import manifest_generations
    from eval import contamination
    from eval.modeling import load  # torch
    from eval.perplexity import evaluate, evaluate_generations, open_shards

    loaded = load(s.checkpoint, s.cfg.device, str(s.cfg.dtype))
    t = s.cfg.task
    if t.texts:
        return _perplexity_texts(s, loaded)
    data = _path(t.data_dir) or _path(s.cfg.train_manifest) or contamination.manifest_from_info(loaded.info)
    if data is None:
        raise ConfigError("task.data_dir", "the checkpoint records no data folder; pass task.data_dir=<data_prep out_dir>")
    shards = open_shards(Path(data), t.split)
    block = t.block_size or loaded.max_len
    if block > loaded.max_len:
        raise ConfigError("task.block_size", f"{block} is longer than the model's {loaded.max_len} tokens")
    limit = t.max_windows or s.cfg.limit
    r = evaluate(loaded, shards, block, t.batch_size, limit)
    results = {"task": "perplexity", "mode": str(t.mode), "source": str(s.checkpoint), "limit": limit,
               "data": str(data), "split": str(t.split), "block_size": block,
               "metrics": r.metrics(), "counts": {**r.counts(), "retired_documents": shards.retired_documents},
               "extra": {}}
    generations = manifest_generations(shards.manifest)
    if len(generations) > 1:  # a corpus grown by append=true: old vs new documents
        results["by_generation"] = evaluate_generations(loaded, Path(data), str(t.split), generations, block,
                                                        t.batch_size, limit)
    return results


def _perplexity_texts(s: Settings, loaded) -> dict:
    from eval.perplexity import evaluate_texts
    from tasks.pretrain import read_texts, read_word_counts

    t = s.cfg.task
    block = t.block_size or loaded.max_len
    if block > loaded.max_len:
        raise ConfigError("task.block_size", f"{block} is longer than the model's {loaded.max_len} tokens")
    items = read_texts(t.texts)
    items = items[: s.cfg.limit] if s.cfg.limit else items
    counts = read_word_counts(t.word_counts) if t.word_counts else None
    r = evaluate_texts(loaded, items, block, t.batch_size, counts, t.rare_max_count)
    return {"task": "perplexity", "mode": str(t.mode), "source": str(s.checkpoint), "limit": s.cfg.limit,
            "data": str(t.texts), "word_counts": t.word_counts, "block_size": block, **r}


def _generate(s: Settings) -> tuple[dict, list[dict]]:
    import torch

    from eval.modeling import load
    from eval.sampling import generate_texts, text_prompt

    loaded = load(s.checkpoint, s.cfg.device, str(s.cfg.dtype))
    t = s.cfg.task
    if t.prompts_file:
        prompts = [p for p in Path(t.prompts_file).read_text(encoding="utf-8").splitlines() if p.strip()]
    else:
        prompts = [t.prompt]
    prompts = prompts[: s.cfg.limit] if s.cfg.limit else prompts
    gen = torch.Generator(device=loaded.device).manual_seed(s.cfg.seed)
    texts: list[str] = []
    bs = s.generation.batch_size
    for first in tqdm(range(0, len(prompts), bs), desc="generate", unit="batch"):
        rows = [text_prompt(loaded, p, s.generation.max_new_tokens) for p in prompts[first: first + bs]]
        texts += generate_texts(loaded, rows, s.generation, gen)
    items = [{"id": i, "prompt": p, "generation": t} for i, (p, t) in enumerate(zip(prompts, texts, strict=True))]
    return ({"task": "generate", "mode": "generate", "source": str(s.checkpoint), "limit": s.cfg.limit,
             "metrics": {}, "counts": {"prompts": len(items)}, "generation": asdict(s.generation),
             "extra": {}, "generations": items}, items)


def run(cfg: DictConfig | Settings) -> dict:
    """Evaluate and write results.json / results.md under out_dir; returns the results dict."""
    s = cfg if isinstance(cfg, Settings) else build_config(cfg)
    s.out_dir.mkdir(parents=True, exist_ok=True)
    items: list[dict] | None
    if s.task.kind is Kind.LANGUAGE_MODEL:
        results, items = _perplexity(s), None
    elif s.task.kind is Kind.GENERATION:
        results, items = _generate(s)
    else:
        results, items = _scored(s)
    report.write(s.out_dir, results, items)
    log.info("%s: %s -> %s", s.name, {k: round(v, 4) for k, v in results["metrics"].items()}, s.out_dir / "results.json")
    return results
