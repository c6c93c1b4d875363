"""Loss-curve PNG from a run directory's metrics.csv / val_metrics.csv."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on cluster nodes; set before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402

from common.atomic import atomic_path  # noqa: E402


def read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def plot_loss(run_dir: str | Path, out: str | Path | None = None) -> Path | None:
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
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return out
