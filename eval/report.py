"""results.json, results.md and the figures under out_dir."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on cluster nodes; set before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402

from common.atomic import atomic_path, atomic_write_json, atomic_write_text  # noqa: E402

PERCENT = {"accuracy", "macro_f1", "precision", "recall", "f1", "ontology_precision", "ontology_recall", "ontology_f1"}


def _fmt(key: str, value) -> str:
    if isinstance(value, float):
        return f"{100 * value:.2f}" if key in PERCENT else f"{value:.4f}"
    return str(value)


def markdown(results: dict) -> str:
    lines = [f"# {results['task']}", "", f"Source: `{results['source']}`", ""]
    if results.get("limit"):
        lines += [f"**Subset**: a subset of {results['limit']} test items (stratified by label); not comparable with published numbers.", ""]
    if results["metrics"]:
        lines += ["| metric | value |", "|---|---|"]
        for k, v in results["metrics"].items():
            lines.append(f"| {k}{' (%)' if k in PERCENT else ''} | {_fmt(k, v)} |")
    per_type = results.get("extra", {}).get("per_type")
    if per_type:
        lines += ["", "| type | precision (%) | recall (%) | f1 (%) | gold | predicted |", "|---|---|---|---|---|---|"]
        for t, m in per_type.items():
            lines.append(f"| {t} | {100 * m['precision']:.2f} | {100 * m['recall']:.2f} | {100 * m['f1']:.2f} "
                         f"| {m.get('n_gold', '')} | {m.get('n_pred', '')} |")
    if results.get("counts"):
        lines += ["", "| count | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in results["counts"].items()]
    by_gen = results.get("by_generation")
    if by_gen:
        # trained tokens: what the checkpoint trained on per generation (its data_generations record)
        trained = any("trained_tokens" in m for m in by_gen.values())
        head = ["generation", "bits/byte", *(["trained tokens"] if trained else []), "nll/token", "perplexity",
                "tokens", "documents", "retired"]
        lines += ["", f"Per corpus generation ({results.get('split', 'val')} split, live documents only):", "",
                  "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for g, m in by_gen.items():
            seen = [str(m.get("trained_tokens", ""))] if trained else []
            scores = ([f"{m['bits_per_byte']:.4f}", *seen, f"{m['nll_per_token']:.4f}", f"{m['perplexity']:.2f}",
                       str(m["tokens"])] if "bits_per_byte" in m else [m["skipped"], *seen, "", "", ""])
            lines.append("| " + " | ".join([g, *scores, str(m["documents"]), str(m["retired_documents"])]) + " |")
    for g in results.get("generations", []):
        lines += ["", f"**Prompt {g['id']}**: {g['prompt']}", "", "> " + g["generation"].replace("\n", "\n> ")]
    return "\n".join(lines) + "\n"


def confusion_png(path: Path, confusion: dict, title: str) -> None:
    m = confusion["matrix"]
    fig, ax = plt.subplots(figsize=(4.5, 3.6))
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(confusion["columns_pred"])), confusion["columns_pred"])
    ax.set_yticks(range(len(confusion["rows_gold"])), confusion["rows_gold"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title)
    vmax = max(max(r) for r in m) or 1
    for i, row in enumerate(m):
        for j, v in enumerate(row):
            ax.text(j, i, str(v), ha="center", va="center", color="white" if v > vmax / 2 else "black")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def write(out_dir: Path, results: dict, items: list[dict] | None = None) -> None:
    """Flat metrics at the top level of results.json (e.g. results["accuracy"], and "per_type" for
    tasks scored per entity type), details below."""
    out_dir.mkdir(parents=True, exist_ok=True)
    flat = {**results["metrics"], **{k: v for k, v in results.items() if k != "metrics"}, "metrics": results["metrics"]}
    if "per_type" in results.get("extra", {}):
        flat["per_type"] = results["extra"]["per_type"]
    atomic_write_json(out_dir / "results.json", flat)
    atomic_write_text(out_dir / "results.md", markdown(results))
    if items is not None:
        atomic_write_text(out_dir / "items.jsonl", "".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items))
    if "confusion" in results.get("extra", {}):
        confusion_png(out_dir / "confusion_matrix.png", results["extra"]["confusion"], results["task"])
