"""Architecture ablation (issue 12): hybrid embedding stages and local attention on real text.

    python benchmarks/ablation.py run --seeds 3          # prepare (once) + train + eval the core arms x seeds + summarize
    python benchmarks/ablation.py run --seeds 3 --arms char_out   # a design variant, into the same table
    python benchmarks/ablation.py run --micro            # smoke test: 1 seed, 2 arms, 20 steps, small data (~3 min)
    python benchmarks/ablation.py summarize --out runs/ablation

Steps (each skips what is already done, so a rerun resumes):
1. prepare: ../shared/data/corpus -> <out>/data, a data_prep-layout folder (manifest.json, tokenizer/,
   shards/train|val). Documents go to val ("held out") by data_prep's own hash of their id
   (`data_prep.tokens.shards.split_of`), so documents with chemical spans fall in both parts
   (checked). The script writes the folder itself with data_prep's tokenizer trainer and
   ShardWriter (not `python -m data_prep`, whose filters and dedup would change the corpus). Beside it: heldout.jsonl.gz (the
   first --heldout-docs held-out documents in hash order: validation, rare-word and numeric bits
   per byte), heldout_chem.jsonl.gz (every held-out document with gold chemical spans, with
   them: chemical-span bits per byte), bc5cdr_test.jsonl.gz
   (BC5CDR test abstracts with gold Chemical mentions from the PubTator file) and
   word_counts.json (word counts of the training part, for rare-word bits per byte).
2. train: `python -m train experiment=ablation/<arm> seed=<s>` for every arm x seed; the same seed
   gives every arm the same batches in the same order and the same number of tokens.
3. eval: `python -m eval task=perplexity task.texts=...` on heldout and bc5cdr_test (docs/eval.md).
4. summarize: <out>/ablation.md (mean ± std over seeds) + PNG plots.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common.atomic import atomic_open, atomic_write_json, atomic_write_text  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
CORPUS = SHARED / "corpus"
PUBTATOR = SHARED / "biogpt" / "BC5CDR" / "CDR_Data" / "CDR.Corpus.v010516" / "CDR_TestSet.PubTator.txt"
CORE_ARMS = ("base", "char", "term", "hybrid", "local", "local_hybrid")  # what `run` trains by default
# design variants tried after the core arms (issue 12 "make the design earn its place"): `run --arms ...`
DESIGN_ARMS = ("char_out", "hybrid_gate", "hybrid_out")
ARMS = CORE_ARMS + DESIGN_ARMS
MICRO_ARMS = ("base", "hybrid")
# (results key, eval set, label) rows of the table and of the span bar chart
EVAL_SETS = ("heldout", "heldout_chem", "bc5cdr", "pmc_long")
EVAL_FILES = {"heldout": "heldout.jsonl.gz", "heldout_chem": "heldout_chem.jsonl.gz", "bc5cdr": "bc5cdr_test.jsonl.gz",
              "pmc_long": "pmc_long.jsonl.gz"}
PMC = SHARED / "pmc"
PMC_MIN_CHARS = 8000  # long documents only: where local attention's window matters
PMC_MAX_CHARS = 300_000  # ~90k tokens in all: the evaluation stays under a minute per run
METRICS = (("bits_per_byte", "heldout", "validation bits/byte (held-out docs)"),
           ("span_bits_per_byte", "heldout_chem", "chem-span bits/byte (held-out)"),
           ("span_bits_per_byte", "bc5cdr", "chem-span bits/byte (BC5CDR test)"),
           ("rare_word_bits_per_byte", "heldout", "rare-word bits/byte (held-out)"),
           ("numeric_bits_per_byte", "heldout", "numeric bits/byte (held-out)"),
           ("bits_per_byte", "pmc_long", "bits/byte (PMC full text)"))


class AblationError(Exception):
    """One line for the user: what is wrong and what to do."""


# -- 1. data -------------------------------------------------------------------------------------------
def _jsonl(path: Path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as e:
                    raise AblationError(f"{path}:{n}: not JSON ({e.msg})") from None


def _write_jsonl(path: Path, rows) -> int:
    n = 0
    with atomic_open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        for r in rows:
            f.write((json.dumps(r, ensure_ascii=False) + "\n").encode("utf-8"))
            n += 1
    return n


def read_pubtator(path: Path) -> list[dict]:
    """BC5CDR test abstracts: text = title + " " + abstract (PubTator offsets count the title's
    newline as one character, so a space keeps them), spans = the Chemical mentions, merged."""
    from tasks.pretrain import merge

    docs: dict[str, dict] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if "|t|" in line[:20] or "|a|" in line[:20]:
            pmid, kind, body = line.split("|", 2)
            d = docs.setdefault(pmid, {"title": "", "abstract": "", "spans": []})
            d["title" if kind == "t" else "abstract"] = body
        elif line.strip():
            cols = line.split("\t")
            if len(cols) >= 5 and cols[1] != "CID" and cols[4] == "Chemical":
                docs[cols[0]]["spans"].append((int(cols[1]), int(cols[2])))
            elif len(cols) < 4:
                raise AblationError(f"{path}:{n}: not a PubTator line; restore the original file")
    out = []
    for pmid, d in docs.items():
        text = f"{d['title']} {d['abstract']}"
        spans = merge(d["spans"])
        if any(e > len(text) for _, e in spans):
            raise AblationError(f"{path}: PMID {pmid} has a mention past the end of its text")
        out.append({"id": f"pmid:{pmid}", "text": text, "spans": [list(s) for s in spans]})
    return out


def prepare(out: Path, corpus: Path, val_fraction: float, vocab_size: int, max_docs: int | None,
            heldout_docs: int, pubtator: Path = PUBTATOR) -> Path:
    """<out>/data (train/val shards + tokenizer), heldout[_chem].jsonl.gz, bc5cdr_test.jsonl.gz, word_counts.json."""
    import hashlib

    import numpy as np

    from data_prep.tokens.shards import ShardWriter, dtype_name, split_of, token_dtype
    from data_prep.tokens.tokenizer import save_tokenizer, tokenizer_info, train_bpe
    from tasks.pretrain import count_words

    data = out / "data"
    if all(p.is_file() for p in (data / "manifest.json", out / "word_counts.json", out / "heldout_chem.jsonl.gz")):
        return data
    for p in (corpus / "corpus.jsonl.gz", corpus / "chem_spans.jsonl.gz", pubtator):
        if not p.is_file():
            raise AblationError(f"{p}: missing; the ablation needs ../shared/data (corpus/ and biogpt/BC5CDR)")
    spans = {r["id"]: r["spans"] for r in _jsonl(corpus / "chem_spans.jsonl.gz")}
    docs = list(_jsonl(corpus / "corpus.jsonl.gz"))
    # the micro setting keeps a hash-chosen subset (every source, chem documents included); salted,
    # so the subset is not the ids with the smallest split hash (which would all be held out)
    docs.sort(key=lambda d: hashlib.sha256(b"ablation-subset:" + d["id"].encode()).digest())
    if max_docs:
        docs = docs[:max_docs]
    train = [d for d in docs if split_of(d["id"], val_fraction) == "train"]
    held = [d for d in docs if split_of(d["id"], val_fraction) == "val"]
    chem = (sum(d["id"] in spans for d in train), sum(d["id"] in spans for d in held))
    if min(chem) == 0:
        raise AblationError(f"documents with chemical spans: {chem[0]} train, {chem[1]} held out; "
                            "both must be > 0 (raise --val-fraction or --max-docs)")
    print(f"prepare: {len(train)} train / {len(held)} held-out documents ({chem[0]} / {chem[1]} with chem spans)")
    tok = train_bpe((d["text"] for d in train), vocab_size=vocab_size, length=len(train))
    sha = save_tokenizer(tok, data / "tokenizer" / "tokenizer.json")
    splits = {}
    for name, part in (("train", train), ("val", held)):
        writer = ShardWriter(data / "shards", name, tok.get_vocab_size(), 2, max_tokens=1 << 26, rel_to=data)
        for enc in tok.encode_batch([d["text"] for d in part], add_special_tokens=False):
            writer.add(np.asarray(enc.ids, dtype=np.int64))
        shards = [s.to_dict() for s in writer.close()]
        splits[name] = {"tokens": sum(s["tokens"] for s in shards), "documents": len(part), "shards": shards}
    _write_jsonl(out / "heldout.jsonl.gz", ({"id": d["id"], "text": d["text"]} for d in held[:heldout_docs]))
    _write_jsonl(out / "heldout_chem.jsonl.gz", ({"id": d["id"], "text": d["text"], "spans": spans[d["id"]]}
                                                 for d in held if d["id"] in spans))
    _write_jsonl(out / "bc5cdr_test.jsonl.gz", read_pubtator(pubtator))
    atomic_write_json(out / "word_counts.json", dict(count_words(d["text"] for d in train)))
    manifest = {"format_version": 1, "config_hash": None, "tokenizer": tokenizer_info(tok, sha),
                "dtype": dtype_name(token_dtype(tok.get_vocab_size())), "splits": splits,
                "inputs": [str(corpus / "corpus.jsonl.gz")], "counts": {"train": len(train), "val": len(held)},
                "dropped": {}, "decontaminated_ids": [], "quarantined": [],
                "made_by": "benchmarks/ablation.py prepare", "val_fraction": val_fraction, "max_docs": max_docs}
    atomic_write_json(data / "manifest.json", manifest)  # last: its presence marks the folder complete
    return data


def prepare_pmc(out: Path, pmc: Path = PMC) -> Path:
    """<out>/pmc_long.jsonl.gz: the English full texts (>= PMC_MIN_CHARS characters) of the real JATS
    articles in ../shared/data/pmc, parsed by data_prep's JATS parser: long documents, for loss by
    position and local attention. Full texts, not abstracts: none of them is in the training part."""
    path = out / "pmc_long.jsonl.gz"
    if path.is_file():
        return path
    from data_prep.errors import PrepError
    from data_prep.parse.jats import iter_jats

    files = sorted(p for p in pmc.rglob("*") if p.is_file() and p.name != "PROVENANCE.md")
    if not files:
        raise AblationError(f"{pmc}: no JATS files; the ablation needs ../shared/data/pmc")
    rows, seen, total = [], set(), 0
    for f in files:
        if total >= PMC_MAX_CHARS:
            break
        try:
            for d in iter_jats(f):
                if d.language in ("", "eng") and len(d.text) >= PMC_MIN_CHARS and d.id not in seen:
                    seen.add(d.id)
                    rows.append({"id": d.id, "text": d.text})
                    total += len(d.text)
        except PrepError as e:  # a file the parser refuses is left out, said once
            print(f"prepare: {f.name}: skipped ({' '.join(str(e).split())[:120]})")
    _write_jsonl(path, rows)
    print(f"prepare: {len(rows)} PMC full texts of >= {PMC_MIN_CHARS} characters -> {path.name}")
    return path


# -- 2./3. train and evaluate ------------------------------------------------------------------------------
def _sh(cmd: list[str], log: Path) -> float:
    t0 = time.time()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        rc = subprocess.call(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "WANDB_MODE": "disabled"})
    if rc:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        raise AblationError(f"{' '.join(cmd[:4])} ... failed (exit {rc}); log {log}: {' | '.join(tail)}")
    return time.time() - t0


def train_and_eval(out: Path, arm: str, seed: int, overrides: list[str], eval_limit: int | None) -> Path:
    """Train (unless done), then evaluate every eval set without a results.json, so an eval set
    added later is filled in for runs that finished before it existed."""
    run = out / "runs" / arm / f"seed{seed}"
    ckpt = run / "checkpoints" / "last.ckpt"
    py = sys.executable
    done = (run / "ablation.json").is_file()
    if not done:
        _sh([py, "-m", "train", f"experiment=ablation/{arm}", f"run_dir={run}", f"seed={seed}",
             f"task.data_dir={out / 'data'}", "resume=auto", *overrides], run / "train.log")
    # `python -m eval task=perplexity task.texts=...`, run in this process (the same eval.app.run)
    # to spare an interpreter start per evaluation
    from eval.app import run as run_eval
    from eval.config import compose

    for name in EVAL_SETS:
        if (run / "eval" / name / "results.json").is_file():
            continue
        run_eval(compose(["task=perplexity", f"checkpoint={ckpt}", f"task.texts={out / EVAL_FILES[name]}",
                          f"task.word_counts={out / 'word_counts.json'}", f"out_dir={run / 'eval' / name}",
                          *([f"limit={eval_limit}"] if eval_limit else [])]))
    if not done:
        from common.checkpoint import load_model

        model, _, info = load_model(ckpt)
        atomic_write_json(run / "ablation.json", {"arm": arm, "seed": seed, "params": model.num_params(),
                                                  "overrides": overrides, "eval_limit": eval_limit})
    return run


# -- 4. summary ---------------------------------------------------------------------------------------------
def _csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def load_run(run: Path) -> dict:
    """One finished run's numbers: eval metrics, val curve, throughput, parameters."""
    meta = json.loads((run / "ablation.json").read_text())
    evals = {name: json.loads((run / "eval" / name / "results.json").read_text())["metrics"]
             for name in EVAL_SETS if (run / "eval" / name / "results.json").is_file()}
    steps = _csv(run / "metrics.csv")
    val = [(int(r["step"]), float(r["val_loss"]), float(r["time"])) for r in _csv(run / "val_metrics.csv")]
    tps = [float(r["tokens_per_s"]) for r in steps if r.get("tokens_per_s") not in (None, "", "nan")]
    pos = []  # loss by position on the long PMC texts: (bucket end, nats/token)
    if (run / "eval" / "pmc_long" / "results.json").is_file():
        extra = json.loads((run / "eval" / "pmc_long" / "results.json").read_text()).get("extra", {})
        pos = [(b["positions"][1], b["nll_per_token"]) for b in extra.get("loss_by_position", []) if b["nll_per_token"]]
    return {**meta, "evals": evals, "val": val, "pmc_loss_by_position": pos, "tokens_per_s": statistics.median(tps) if tps else math.nan,
            "train_time_s": float(steps[-1]["time"]) if steps else math.nan}


def collect(out: Path) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {}
    for meta in sorted((out / "runs").glob("*/seed*/ablation.json")):
        r = load_run(meta.parent)
        runs.setdefault(r["arm"], []).append(r)
    if not runs:
        raise AblationError(f"{out / 'runs'}: no finished run (ablation.json); run `benchmarks/ablation.py run` first")
    return {a: runs[a] for a in sorted(runs, key=lambda a: ARMS.index(a) if a in ARMS else len(ARMS))}


def mean_std(values: list[float]) -> tuple[float, float]:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return math.nan, math.nan
    return statistics.fmean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0


def _fmt(ms: tuple[float, float], digits: int = 4) -> str:
    m, s = ms
    return "n/a" if math.isnan(m) else f"{m:.{digits}f} ± {s:.{digits}f}"


def val_at(val: list[tuple[int, float, float]], t: float) -> float:
    """Validation loss at wall time t (s): the last validation done by then (nan before the first)."""
    done = [v for _, v, when in val if when <= t + 1e-9]
    return done[-1] if done else math.nan


def summarize(out: Path, title_note: str = "") -> Path:
    runs = collect(out)
    # equal wall time: the longest time every run reached (the shortest run's training time)
    t_eq = min(r["train_time_s"] for rs in runs.values() for r in rs)
    lines = [f"# Architecture ablation{title_note}", "",
             f"Runs: {sum(map(len, runs.values()))} ({', '.join(f'{a} × {len(rs)}' for a, rs in runs.items())}); "
             "mean ± std over seeds (sample std; 0 with one seed). Bits per byte from `python -m eval task=perplexity "
             "task.texts=...` (docs/eval.md); lower is better.", ""]
    head = ["arm", "seeds", "params", *[m[2] for m in METRICS], "tokens/s", "train time (s)",
            f"val nats/token at {t_eq:.0f} s", "val nats/token at end"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for arm, rs in runs.items():
        row = [arm, str(len(rs)), f"{rs[0]['params'] / 1e6:.2f}M"]
        row += [_fmt(mean_std([r["evals"].get(ev, {}).get(key, math.nan) for r in rs])) for key, ev, _ in METRICS]
        row += [_fmt(mean_std([r["tokens_per_s"] for r in rs]), 0), _fmt(mean_std([r["train_time_s"] for r in rs]), 0),
                _fmt(mean_std([val_at(r["val"], t_eq) for r in rs])),
                _fmt(mean_std([r["val"][-1][1] if r["val"] else math.nan for r in rs]))]
        lines.append("| " + " | ".join(row) + " |")
    lines += delta_table(runs)
    plots = plot(out, runs)
    lines += ["", *[f"![{p.stem}]({p.name})" for p in plots], ""]
    md = out / "ablation.md"
    atomic_write_text(md, "\n".join(lines))
    atomic_write_json(out / "ablation.json", {a: [{k: v for k, v in r.items()} for r in rs] for a, rs in runs.items()})
    return md


def _metric(r: dict, key: str, ev: str) -> float:
    return r["evals"].get(ev, {}).get(key, math.nan)


def delta_table(runs: dict[str, list[dict]], ref: str = "base") -> list[str]:
    """Each arm minus `ref`, metric by metric: the difference of the means, the seed spread it must
    beat (the larger of the two arms' std), and the verdict rule of issue 12: an arm lowers a metric
    only when the difference is below -2 x spread (and raises it when above +2 x spread)."""
    if ref not in runs or len(runs) < 2:
        return []
    lines = ["", f"Difference from `{ref}` (bits/byte; negative = better): mean difference, seed spread "
             "(larger std of the two arms), verdict (lower/higher when |difference| > 2 × spread, else "
             "'within noise').", "",
             "| arm | " + " | ".join(m[2] for m in METRICS) + " |", "|" + "---|" * (len(METRICS) + 1)]
    for arm, rs in runs.items():
        if arm == ref:
            continue
        cells = []
        for key, ev, _ in METRICS:
            (ma, sa), (mb, sb) = (mean_std([_metric(r, key, ev) for r in x]) for x in (rs, runs[ref]))
            d, spread = ma - mb, max(sa, sb)
            if math.isnan(d):
                cells.append("n/a")
                continue
            verdict = ("lower" if d < -2 * spread else "higher" if d > 2 * spread else "within noise") \
                if spread > 0 else "one seed: no verdict"
            cells.append(f"{d:+.4f} (spread {spread:.4f}, {verdict})")
        lines.append(f"| Δ {arm} | " + " | ".join(cells) + " |")
    return lines


def plot(out: Path, runs: dict[str, list[dict]]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for arm, rs in runs.items():
        steps = sorted({s for r in rs for s, _, _ in r["val"]})
        means = [mean_std([next((v for s2, v, _ in r["val"] if s2 == s), math.nan) for r in rs]) for s in steps]
        ax.errorbar(steps, [m for m, _ in means], yerr=[s for _, s in means], label=arm, capsize=2, lw=1)
    ax.set(xlabel="optimizer step", ylabel="validation loss (nats/token)", title="Validation curves (mean ± std over seeds)")
    ax.legend()
    fig.tight_layout()
    curves = out / "ablation_val_curves.png"
    fig.savefig(curves, dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / max(len(runs), 1)
    for i, (arm, rs) in enumerate(runs.items()):
        ms = [mean_std([r["evals"].get(ev, {}).get(key, math.nan) for r in rs]) for key, ev, _ in METRICS]
        ax.bar([j + i * width for j in range(len(METRICS))], [m for m, _ in ms], width, yerr=[s for _, s in ms],
               capsize=3, label=arm)
    ax.set_xticks([j + width * (len(runs) - 1) / 2 for j in range(len(METRICS))])
    ax.set_xticklabels([m[2].replace(" (", "\n(") for m in METRICS], fontsize=7)
    ax.set(ylabel="bits per byte", title="Span metrics (mean ± std over seeds)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    bars = out / "ablation_span_metrics.png"
    fig.savefig(bars, dpi=120)
    plt.close(fig)
    if not any(r.get("pmc_loss_by_position") for rs in runs.values() for r in rs):
        return [curves, bars]

    fig, ax = plt.subplots(figsize=(7, 4))
    for arm, rs in runs.items():
        ends = sorted({e for r in rs for e, _ in r.get("pmc_loss_by_position", [])})
        means = [mean_std([dict(r.get("pmc_loss_by_position", [])).get(e, math.nan) for r in rs]) for e in ends]
        ax.errorbar(ends, [m for m, _ in means], yerr=[s for _, s in means], label=arm, capsize=2, lw=1, marker=".")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="position in the window (bucket end, tokens)", ylabel="nats/token",
           title="Loss by position, PMC full texts (mean ± std over seeds)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    position = out / "ablation_loss_by_position.png"
    fig.savefig(position, dpi=120)
    plt.close(fig)
    return [curves, bars, position]


# -- 5. speed: interleaved training steps --------------------------------------------------------------------
def speed(arms: tuple[str, ...], repeats: int, warmup: int, json_path: Path | None,
          data: Path = ROOT / "runs" / "ablation" / "data") -> dict:
    """Training-step speed of each arm's model relative to `base`, the steps interleaved round by round
    (benchmarks/_stats.py), so the load other jobs put on the machine hits every arm alike: the
    ablation's own tokens/s column is taken from runs that ran at different times, under different load.
    Same shape, batch and data as the runs: 4 x 512 tokens of the ablation's training shard, AdamW,
    the chunked loss, torch's default threads."""
    import argparse as _argparse

    import torch
    from _stats import Bench, interleaved, rate_ratios

    from model import Decoder, ModelConfig
    from model.loss import chunked_cross_entropy

    if not (data / "manifest.json").is_file():
        raise AblationError(f"{data}: missing; run `benchmarks/ablation.py run` (it prepares the data) first")
    from tokenizers import Tokenizer

    from data_prep.tokens.shards import TokenShards

    shards = TokenShards.from_manifest(data, split="train")
    tok = Tokenizer.from_file(str(data / "tokenizer" / "tokenizer.json"))
    cases, models = {}, {}
    for arm in arms:
        cfg = _compose_arm(arm)
        mc = {k: v for k, v in cfg.model.items() if k != "name"}
        mc["vocab_size"] = shards.vocab_size
        model = Decoder(ModelConfig.from_mapping(mc), seed=0)
        model.attach_vocab([tok.decode([i]) for i in range(tok.get_vocab_size())])
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        B, T = cfg.data.batch_size, cfg.task.seq_len
        x = torch.from_numpy(shards.window(0, B * T + 1))
        batch = torch.stack([x[i * T: i * T + T + 1] for i in range(B)])  # (B, T + 1)

        def step(model=model, opt=opt, batch=batch):
            loss = chunked_cross_entropy(model(batch[:, :-1], return_hidden=True), model.head_weight, batch[:, 1:])
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        cases[arm], models[arm] = step, model
    ratios = {}
    with Bench("ablation speed", _argparse.Namespace(arms=list(arms), repeats=repeats, json=json_path)) as bench:
        times = interleaved(cases, repeats=repeats, warmup=warmup)
        for arm in arms:
            bench.record(f"{arm}_step_s", times[arm])
            bench.record(f"{arm}_params", models[arm].num_params())
            if arm != "base":
                ratios[arm] = bench.ratio(f"{arm} training step speed vs base", rate_ratios(times[arm], times["base"]))
    return ratios


def _compose_arm(arm: str):
    from hydra import compose, initialize_config_dir

    from train.config import check_experiment  # also registers the schema

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"experiment=ablation/{arm}", "run_dir=/tmp/unused"],
                      return_hydra_config=True)
        check_experiment(cfg)
    return cfg


# -- command line ----------------------------------------------------------------------------------------------
MICRO = {"max_docs": 1500, "vocab": 2048, "eval_limit": 30, "heldout_docs": 60,
         "overrides": ["trainer.max_steps=20", "trainer.val_check_interval=10", "trainer.checkpoint_every_n_steps=20",
                       "optim.warmup_steps=5", "task.seq_len=128", "model.max_seq_len=128", "data.val_batches=4"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="prepare + train + eval every arm x seed + summarize")
    r.add_argument("--out", type=Path, default=None, help="default runs/ablation (runs/ablation_micro with --micro)")
    r.add_argument("--seeds", type=int, default=3)
    r.add_argument("--arms", nargs="+", choices=ARMS, default=None,
                   help=f"default: the core arms {', '.join(CORE_ARMS)}; design variants: {', '.join(DESIGN_ARMS)}")
    r.add_argument("--micro", action="store_true", help="smoke test: 1 seed, arms base+hybrid, 20 steps, 1,500 docs")
    r.add_argument("--corpus", type=Path, default=CORPUS)
    r.add_argument("--val-fraction", type=float, default=0.05)
    r.add_argument("--vocab", type=int, default=8192)
    r.add_argument("--max-docs", type=int, default=None)
    r.add_argument("--heldout-docs", type=int, default=400, help="held-out documents scored for validation bits/byte")
    r.add_argument("--eval-limit", type=int, default=None, help="score only the first N texts of each eval set")
    r.add_argument("overrides", nargs="*", help="extra `python -m train` overrides, e.g. trainer.max_steps=300")
    sp = sub.add_parser("speed", help="training-step speed of each arm vs base, interleaved (benchmarks/_stats.py)")
    sp.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    sp.add_argument("--repeats", type=int, default=7)
    sp.add_argument("--warmup", type=int, default=1)
    sp.add_argument("--json", type=Path, default=None)
    sp.add_argument("--out", type=Path, default=ROOT / "runs" / "ablation", help="the ablation folder (its data/)")
    s = sub.add_parser("summarize", help="table + plots from finished runs")
    s.add_argument("--out", type=Path, default=ROOT / "runs" / "ablation")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "summarize":
            print(summarize(a.out))
            return 0
        if a.cmd == "speed":
            arms = tuple(dict.fromkeys(["base", *a.arms]))
            speed(arms, a.repeats, a.warmup, a.json, a.out / "data")
            return 0
        out = a.out or ROOT / "runs" / ("ablation_micro" if a.micro else "ablation")
        arms = a.arms or (MICRO_ARMS if a.micro else CORE_ARMS)
        seeds = 1 if a.micro else a.seeds
        max_docs = a.max_docs or (MICRO["max_docs"] if a.micro else None)
        vocab = MICRO["vocab"] if a.micro else a.vocab
        overrides = (MICRO["overrides"] if a.micro else []) + a.overrides
        limit = a.eval_limit or (MICRO["eval_limit"] if a.micro else None)
        t0 = time.time()
        prepare(out, a.corpus, a.val_fraction, vocab, max_docs, MICRO["heldout_docs"] if a.micro else a.heldout_docs)
        prepare_pmc(out)
        for seed in range(seeds):
            for arm in arms:
                t = time.time()
                train_and_eval(out, arm, seed, overrides, limit)
                print(f"{arm} seed {seed}: {time.time() - t:.0f} s")
        md = summarize(out, " (micro smoke test: not evidence)" if a.micro else "")
        print(f"{md} ({time.time() - t0:.0f} s in all)")
        return 0
    except AblationError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
