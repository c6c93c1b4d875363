"""The model card (README.md of an exported folder), generated from what the run recorded: the
model config, the data_prep manifest (sources, counts, licence mix, decontamination), the training
config and tokens seen, and the `python -m eval` results found for this checkpoint."""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Folders that never hold eval results (big, or written by other stages), skipped while searching.
SKIP_DIRS = {"checkpoints", "shards", "documents", "work", "cache", "wandb", ".hydra", "tokenizer", "rejects",
             "__pycache__", ".git"}
MAX_SEARCH_DEPTH = 3
MAX_SEARCH_DIRS = 2000


# ---- what the run recorded -----------------------------------------------------------------------

def data_summary(manifest_path: str | Path | None) -> dict[str, Any] | None:
    """Sources, split sizes, licence mix, drops and decontamination from a data_prep manifest.json
    (and the `source`/`license` columns of its documents). None when there is no manifest."""
    if not manifest_path:
        return None
    path = Path(manifest_path)
    if not path.is_file():
        log.warning("data manifest %s not found; the model card will say the training data is unknown", path)
        return None
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        log.warning("data manifest %s unreadable (%s); the model card will say the training data is unknown", path, e)
        return None
    source_cfg = (m.get("config") or {}).get("source") or {}
    out: dict[str, Any] = {
        "manifest": str(path), "config_hash": m.get("config_hash"),
        "source": source_cfg.get("name") if isinstance(source_cfg, dict) else None,
        "splits": {k: {"documents": v.get("documents"), "tokens": v.get("tokens")}
                   for k, v in (m.get("splits") or {}).items() if isinstance(v, dict)},
        "counts": m.get("counts") or {}, "dropped": m.get("dropped") or {}, "duplicates": m.get("duplicates") or {},
        "tokenizer": m.get("tokenizer") or {}, "input_files": len(m.get("inputs") or []),
        "decontamination": _decontamination(m),
    }
    out["mix"], out["mix_note"] = _licence_mix(path.parent, m.get("documents") or [])
    return out


def _decontamination(m: dict) -> dict[str, Any]:
    summary = m.get("decontamination") or {}
    by_set = m.get("decontaminated_by_eval_set") or {}
    sets = {}
    for name in sorted(set(summary.get("sets") or {}) | set(by_set)):
        s = (summary.get("sets") or {}).get(name, {})
        sets[name] = {"pmids": s.get("pmids"), "text_units": s.get("text_units"),
                      "removed": len(by_set.get(name) or []) if name in by_set else
                      len(set(s.get("removed_by_pmid") or []) | set(s.get("removed_by_text") or []))}
    return {"loaded": bool(summary.get("loaded", bool(sets))), "sets": sets, "note": summary.get("note"),
            "removed_total": len(m.get("decontaminated_ids") or [])}


def _licence_mix(root: Path, parts: list[dict]) -> tuple[list[dict], str | None]:
    """Documents per (split, source, licence), read column by column from the Parquet parts."""
    if not parts:
        return [], "the manifest lists no document files"
    import pyarrow.parquet as pq

    counts: Counter = Counter()
    for part in parts:
        p = root / str(part.get("path", ""))
        if not p.is_file():
            return [], f"document file {p} is not available"
        try:
            names = set(pq.read_schema(p).names)
            cols = [c for c in ("split", "source", "license") if c in names]
            table = pq.read_table(p, columns=cols).to_pydict()
        except Exception as e:  # pyarrow raises several types for damaged files
            return [], f"document file {p} is unreadable ({type(e).__name__})"
        n = len(next(iter(table.values()), []))
        for i in range(n):
            counts[tuple(table[c][i] if c in table else None for c in ("split", "source", "license"))] += 1
    rows = [{"split": s or "?", "source": src or "?", "license": lic or "unknown", "documents": n}
            for (s, src, lic), n in sorted(counts.items(), key=lambda kv: (str(kv[0][0]), -kv[1]))]
    return rows, None


def find_eval_results(checkpoint: str | Path, extra: list[str] | tuple[str, ...] = (), search: bool = True
                      ) -> list[dict[str, Any]]:
    """results.json files of `python -m eval` for this checkpoint: those under its run folder or
    beside it whose `source` is this very checkpoint file, plus the `extra` files given."""
    ckpt = Path(checkpoint).resolve()
    found: dict[Path, dict] = {}
    for p in extra:
        r = _read_results(Path(p))
        if r is not None:
            found[Path(p).resolve()] = r
    if search and ckpt.is_file():
        run_dir = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
        for root in (run_dir, run_dir.parent):
            for p in _results_files(root):
                r = _read_results(p)
                if r is not None and _same_file(r.get("source"), ckpt):
                    found.setdefault(p.resolve(), r)
    return [{"file": str(p), **r} for p, r in sorted(found.items())]


def _results_files(root: Path) -> list[Path]:
    out, visited = [], 0
    for dirpath, dirnames, filenames in os.walk(root):
        depth = len(Path(dirpath).relative_to(root).parts)
        dirnames[:] = [] if depth >= MAX_SEARCH_DEPTH else sorted(d for d in dirnames if d not in SKIP_DIRS)
        visited += 1
        if "results.json" in filenames:
            out.append(Path(dirpath) / "results.json")
        if visited >= MAX_SEARCH_DIRS:
            log.warning("stopped looking for results.json under %s after %d folders; pass eval_results=[...]",
                        root, visited)
            break
    return out


def _read_results(p: Path) -> dict | None:
    try:
        r = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log.warning("%s: unreadable results file, left out of the model card", p)
        return None
    if not isinstance(r, dict) or not isinstance(r.get("metrics"), dict):
        log.warning("%s: not a results.json of `python -m eval` (no metrics), left out of the model card", p)
        return None
    return {"task": r.get("task"), "mode": r.get("mode"), "metrics": r["metrics"], "limit": r.get("limit"),
            "counts": r.get("counts") or {}, "source": r.get("source"), "split": r.get("split")}


def _same_file(a: Any, b: Path) -> bool:
    if not a:
        return False
    try:
        return Path(str(a)).resolve() == b or os.path.samefile(str(a), b)
    except OSError:
        return False


# ---- the card ------------------------------------------------------------------------------------

def _n(x: Any) -> str:
    return f"{x:,}" if isinstance(x, int) and not isinstance(x, bool) else ("?" if x is None else str(x))


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_n(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _architecture(mc: dict, params: dict) -> list[list[str]]:
    from model import ModelConfig

    layers = mc["n_layer"]
    n_local = ModelConfig.from_mapping(mc).pattern.count("local")
    if n_local:
        attention = (f"local sliding window of {mc['window']} tokens on {n_local} of {layers} layers, "
                     f"full causal attention on the other {layers - n_local}")
    else:
        attention = f"full causal attention on all {layers} layers"
    stages = ["token table"] + (["character composition"] if mc.get("char_stage") else []) + (
        ["hashed multi-token terms"] if mc.get("term_stage") else [])
    position = "rotary (RoPE)" if mc["position"] == "rope" else "learned (BioGPT/fairseq, offset 2)"
    return [
        ["architecture", f"decoder-only transformer: {layers} layers, {mc['n_head']} heads, d_model {mc['d_model']}, "
                         f"d_ff {mc['d_ff']}, pre-LayerNorm, {mc['activation']}"],
        ["parameters", f"{params['total']:,} ({params['non_embedding']:,} without token/position embeddings)"],
        ["embedding", " + ".join(stages) + (" (hybrid)" if len(stages) > 1 else "")],
        ["attention", attention],
        ["positions", position],
        ["context", f"{mc['max_seq_len']:,} tokens"],
        ["vocabulary", f"{mc['vocab_size']:,} byte-level BPE tokens; `<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3"],
    ]


def _data_section(data: dict | None, manifest_path: str | None) -> str:
    if data is None:
        where = f" (looked for {manifest_path})" if manifest_path else ""
        return ("The checkpoint does not lead to its data_prep manifest" + where + ", so the training data "
                "is **unknown** to this card. Do not assume it is free of evaluation documents.")
    out = []
    src = f"data_prep source `{data['source']}`" if data.get("source") else "a data_prep run"
    out.append(f"Prepared by the project's `data_prep` pipeline ({src}; manifest config hash "
               f"`{str(data.get('config_hash'))[:12]}`; {data['input_files']:,} input file{'' if data['input_files'] == 1 else 's'}): "
               "PubMed/PMC records parsed, "
               "cleaned, filtered, deduplicated and decontaminated, then tokenized.")
    if data["splits"]:
        out.append(_table(["split", "documents", "tokens"],
                          [[k, v["documents"], v["tokens"]] for k, v in sorted(data["splits"].items())]))
    c = data["counts"]
    keys = [("records", "records parsed"), ("duplicates", "duplicates removed"),
            ("decontaminated", "removed as evaluation documents"), ("kept", "documents kept")]
    facts = [f"{_n(c[k])} {label}" for k, label in keys if k in c]
    if facts:
        out.append("Counts: " + "; ".join(facts) + ".")
    if data["dropped"]:
        out.append("Dropped by filters: " + ", ".join(f"{k} {_n(v)}" for k, v in sorted(data["dropped"].items())) + ".")
    out.append("**Sources and licence mix** (documents per split, source and licence, from the document files):")
    if data["mix"]:
        totals = Counter()
        for r in data["mix"]:
            totals[r["split"]] += r["documents"]
        out.append(_table(["split", "source", "licence", "documents", "share of split"],
                          [[r["split"], r["source"], r["license"], r["documents"],
                            f"{100 * r['documents'] / max(1, totals[r['split']]):.1f}%"] for r in data["mix"]]))
        out.append("PubMed abstracts are distributed under NLM's terms; PMC Open Access articles each carry "
                   "their own licence (above). Check that your use of this model fits them.")
    else:
        out.append(f"Not available: {data['mix_note']}.")
    d = data["decontamination"]
    out.append("**Decontamination** (documents of evaluation sets removed from the training data):")
    if d["sets"]:
        out.append(_table(["evaluation set", "PMIDs loaded", "text units", "documents removed"],
                          [[k, v["pmids"], v["text_units"], v["removed"]] for k, v in d["sets"].items()]))
    else:
        out.append("No evaluation sets were loaded during data preparation"
                   + (f" ({d['note']})" if d.get("note") else "") + "; evaluation documents may be in the training data.")
    return "\n\n".join(out)


def _training_section(info: dict) -> str:
    cfg = info.get("config") or {}
    task = cfg.get("task") if isinstance(cfg.get("task"), dict) else {}
    trainer = cfg.get("trainer") if isinstance(cfg.get("trainer"), dict) else {}
    optim = cfg.get("optim") if isinstance(cfg.get("optim"), dict) else {}
    data = cfg.get("data") if isinstance(cfg.get("data"), dict) else {}
    rows = [["task", info.get("task") or task.get("name")], ["optimizer steps", info.get("step")],
            ["tokens seen", info.get("tokens_seen")]]
    for label, holder, key in (("sequence length", task, "seq_len"), ("micro-batch per device", data, "batch_size"),
                               ("gradient accumulation", trainer, "accumulate_grad_batches"),
                               ("devices", trainer, "devices"), ("precision", trainer, "precision"),
                               ("learning rate", optim, "lr"), ("schedule", optim, "schedule"),
                               ("warmup steps", optim, "warmup_steps"), ("weight decay", optim, "weight_decay"),
                               ("initialised from", task, "init_from")):
        if holder.get(key) is not None:
            rows.append([label, holder[key]])
    out = [_table(["", ""], rows)]
    seen = info.get("tokens_seen")
    if isinstance(seen, int) and seen < 100_000_000:
        out.append(f"> This checkpoint saw only {seen:,} training tokens: treat it as a test or demonstration "
                   "model, not as a useful biomedical language model.")
    if cfg:
        out.append("<details><summary>Full training config</summary>\n\n```json\n"
                   + json.dumps(cfg, indent=2, sort_keys=True, default=str) + "\n```\n</details>")
    return "\n\n".join(out)


def _eval_section(results: list[dict], checkpoint: str) -> str:
    if not results:
        return ("No evaluation results were found for this checkpoint (results.json files of `python -m eval` "
                "whose source is this checkpoint, under or beside its run folder). Evaluate it with "
                "`python -m eval task=<task> checkpoint=...` and export again, or pass eval_results=[...].")
    rows = []
    for r in results:
        metrics = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in sorted(r["metrics"].items()))
        note = "" if not r.get("limit") else f"first {r['limit']} items only"
        if r.get("source") and not _same_file(r["source"], Path(checkpoint)):
            note = "; ".join(x for x in (note, f"evaluated {Path(str(r['source'])).name}") if x)
        rows.append([r.get("task") or "?", r.get("mode") or "", metrics or "(none)", note])
    return _table(["task", "mode", "metrics", "note"], rows)


def _usage(fmt: str) -> str:
    remote = ", trust_remote_code=True" if fmt == "remote_code" else ""
    return f"""```python
from transformers import AutoModelForCausalLM, AutoTokenizer

path = "path/to/this/folder"  # or the hub repo id it was pushed to
tokenizer = AutoTokenizer.from_pretrained(path)
model = AutoModelForCausalLM.from_pretrained(path{remote})
inputs = tokenizer(["Metformin is a first-line treatment for"], return_tensors="pt")
out = model.generate(**inputs, max_new_tokens=40, do_sample=False)
print(tokenizer.decode(out[0], skip_special_tokens=True))
```

The tokenizer puts `</s>` before the text: the document separator every training document
follows (as in BioGPT). Batches are padded on the left.
""" + ("""
`trust_remote_code=True` runs the Python files of this folder: the project's decoder (`decoder.py`
and the files it imports, copied from biogpt-healthcare's `model/`) and the thin transformers wrapper
`modeling_biogpt_healthcare.py`. Read them before loading a copy you did not make.
""" if fmt == "remote_code" else "") + """
To serve it with an OpenAI-compatible API, or use it as `task.init_from` for further training,
see biogpt-healthcare's docs/serving.md (`python -m serve checkpoint=<this folder>`).
"""


LIMITATIONS = """## Intended use

Research on biomedical text: language modelling of PubMed/PMC-style abstracts and articles,
fine-tuning for biomedical NLP tasks (question answering, relation extraction, document
classification), and studying such models. It is a base language model: it continues text; it
was not instruction-tuned or aligned, and it answers chat-style prompts only as well as its
training text allows.

## Limitations and risks

- **It can produce fluent, confident and false statements**: invented findings, wrong drug names,
  doses, interactions or statistics, and citations to papers that do not exist. Check every claim
  against the primary literature.
- **Not for clinical decisions.** Do not use it to diagnose, treat, triage or advise patients, or
  for any clinical decision, without the oversight of a qualified professional who verifies the output.
- Its knowledge stops at its training data (English-language PubMed/PMC text up to the snapshot
  used) and carries that literature's biases: publication bias, under-studied populations,
  outdated or retracted findings that were not filtered out.
- It may reproduce passages of its training documents, including text under licences that
  restrict reuse (see the licence mix above).
- Evaluation results above measure narrow benchmarks; they do not establish safety or
  fitness for any medical purpose.
"""


def model_card(*, name: str, fmt: str, license: str, info: dict, params: dict, data: dict | None,
               results: list[dict], dtype: str, checkpoint: str) -> str:
    mc = dict(info["model_config"])
    front = "\n".join(["---", f"license: {license}", "library_name: transformers", "pipeline_tag: text-generation",
                       "language:", "- en", "tags:", "- biomedical", "- pubmed", "- text-generation",
                       "- biogpt-healthcare", *(["- custom_code"] if fmt == "remote_code" else []), "---"])
    kind = ("`BioGptForCausalLM` (plain transformers, no remote code)" if fmt == "biogpt" else
            "the project's own decoder as remote code (`trust_remote_code=True`)")
    intro = (f"A {params['total'] / 1e6:,.1f}M-parameter biomedical causal language model trained with "
             f"biogpt-healthcare (a PubMed/PMC pretraining pipeline), exported as {kind}, weights in {dtype}.")
    parts = [front, f"# {name}", intro, "## Model", _table(["", ""], _architecture(mc, params)),
             "## How to use", _usage(fmt), "## Training data", _data_section(data, info.get("data_manifest")),
             "## Training", _training_section(info), "## Evaluation", _eval_section(results, checkpoint),
             LIMITATIONS.strip(), "## Provenance",
             _table(["", ""], [["exported from", f"`{Path(checkpoint).name}` of run `{_run_name(checkpoint)}`"],
                               ["data manifest", f"`{info.get('data_manifest') or 'unknown'}`"],
                               ["tokenizer sha256", f"`{((data or {}).get('tokenizer') or {}).get('sha256', 'unknown')}`"]])]
    return "\n\n".join(p.strip() for p in parts) + "\n"


def _run_name(checkpoint: str) -> str:
    p = Path(checkpoint)
    return p.parent.parent.name if p.parent.name == "checkpoints" else p.parent.name
