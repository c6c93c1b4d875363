"""Loss-curve PNG from a run directory's metrics.csv / val_metrics.csv."""

from __future__ import annotations

import csv
import os
from pathlib import Path


def read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def plot_loss(run_dir: str | Path, out: str | Path | None = None) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    train = read_csv(run_dir / "metrics.csv")
    if not train:
        return None
    val = read_csv(run_dir / "val_metrics.csv")
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([int(r["step"]) for r in train], [float(r["loss"]) for r in train], lw=0.8, label="train loss")
    if val:
        ax.plot([int(r["step"]) for r in val], [float(r["val_loss"]) for r in val], "o-", label="val loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title(run_dir.name)
    ax.grid(alpha=0.3)
    ax.legend()
    out = Path(out) if out else run_dir / "loss_curve.png"
    tmp = out.with_name(out.stem + ".tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, out)
    return out
