"""End-of-run summary (printed with rich) and the document-length histogram (PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from common.atomic import atomic_path


def print_summary(manifest: dict, seconds: float, out_dir: Path) -> None:
    c = manifest["counts"]
    t = Table(title=f"data_prep summary: {out_dir}", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column(justify="right")
    rows = [
        ("input files", c.get("input_files", 0)),
        ("quarantined files", len(manifest["quarantined"])),
        ("records parsed", c.get("parsed", 0)),
        ("deletions applied", c.get("deleted", 0)),
        ("older versions replaced", c.get("superseded", 0)),
        ("dropped by filters", sum(manifest["dropped"].values())),
    ]
    rows += [(f"  {reason}", n) for reason, n in sorted(manifest["dropped"].items())]
    rows += [
        ("duplicates", c.get("duplicates", 0)),
        ("decontaminated", c.get("decontaminated", 0)),
        ("documents kept", c.get("kept", 0)),
    ]
    for split, s in manifest["splits"].items():
        rows.append((f"{split}: documents / tokens", f"{s['documents']:,} / {s['tokens']:,}"))
    rows.append(("vocabulary", manifest["tokenizer"]["vocab_size"]))
    rows.append(("time", f"{seconds:,.1f} s"))
    _print_table(t, rows, manifest["quarantined"])


def print_generation_summary(manifest: dict, generation: int, seconds: float, out_dir: Path) -> None:
    """What an append did: the new generation's counts, what it retired, and the live corpus."""
    g = manifest["generations"][generation - 1]
    c = g["counts"]
    t = Table(title=f"data_prep append: generation {generation} of {out_dir}", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column(justify="right")
    rows: list[tuple[str, object]] = [
        ("new input files", c.get("input_files", 0)),
        ("quarantined files", len(g["quarantined"])),
        ("records parsed", c.get("parsed", 0)),
        ("deletion events", c.get("deletion_events", 0)),
        ("dropped by filters", sum(g["dropped"].values())),
    ]
    rows += [(f"  {reason}", n) for reason, n in sorted(g["dropped"].items())]
    rows += [("duplicates", c.get("duplicates", 0)), ("decontaminated", c.get("decontaminated", 0)),
             ("documents added", c.get("kept", 0))]
    for split, r in sorted(g.get("retired", {}).items()):
        why = ", ".join(f"{k} {v}" for k, v in r["reasons"].items())
        rows.append((f"{split}: retired documents / tokens", f"{r['documents']:,} / {r['tokens']:,} ({why})"))
    for split, s in g["splits"].items():
        rows.append((f"{split}: new documents / tokens", f"{s['documents']:,} / {s['tokens']:,}"))
    for split, s in manifest["live"].items():
        rows.append((f"{split}: live documents / tokens", f"{s['documents']:,} / {s['tokens']:,}"))
    rows.append(("time", f"{seconds:,.1f} s"))
    _print_table(t, rows, g["quarantined"])


def _print_table(t: Table, rows: list[tuple[str, object]], quarantined: list[dict]) -> None:
    for k, v in rows:
        t.add_row(k, f"{v:,}" if isinstance(v, int) else str(v))
    console = Console()
    console.print(t)
    for q in quarantined:
        console.print(f"[yellow]quarantined[/yellow] {q['path']}: {q['reason']}")


def length_histogram(lengths: np.ndarray, path: Path) -> None:
    """A PNG histogram of document lengths in tokens (log-spaced bins)."""
    from matplotlib.figure import Figure  # lazy: ~0.4 s of imports, needed only with summary.histogram

    fig = Figure(figsize=(7, 4))  # no pyplot: no global figure state, no GUI backend
    ax = fig.subplots()
    if lengths.size:
        hi = max(2, int(lengths.max()))
        bins = np.unique(np.geomspace(1, hi + 1, num=60).astype(int))
        ax.hist(lengths, bins=bins, color="#3b6ea5")
        ax.set_xscale("log")
        ax.axvline(float(np.median(lengths)), color="k", ls="--", lw=1, label=f"median {int(np.median(lengths))}")
        ax.legend()
    ax.set_xlabel("document length (tokens, EOS included)")
    ax.set_ylabel("documents")
    ax.set_title(f"{lengths.size:,} documents, {int(lengths.sum()):,} tokens")
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
