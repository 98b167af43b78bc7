"""Figures of a run folder: learning curves, firing-rate distributions, confusion matrix.

matplotlib is imported on demand with the Agg backend; every function writes one PNG and
returns its path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_confusion", "plot_learning_curves", "plot_rate_distributions", "read_log"]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """The epoch records of a ``metrics.jsonl`` file."""
    p = Path(path)
    if not p.is_file():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def plot_learning_curves(log_path: str | Path, out: str | Path) -> Path:
    """Loss (train, valid), the task metric, mean firing rates per population and the
    learning rate against the epoch."""
    plt = _plt()
    records = read_log(log_path)
    out = Path(out)
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    if records:
        ep = [r["epoch"] for r in records]
        ax = axes[0]
        ax.plot(ep, [r["train_loss"] for r in records], "o-", label="train")
        ax.plot(ep, [r["valid_loss"] for r in records], "o-", label="valid")
        ax.set_title("task loss")
        ax.legend()
        ax = axes[1]
        if "valid_accuracy" in records[0]:
            ax.plot(ep, [100 * r["train_accuracy"] for r in records], "o-", label="train")
            ax.plot(ep, [100 * r["valid_accuracy"] for r in records], "o-", label="valid")
            ax.set_title("accuracy (%)")
        else:
            ax.plot(ep, [100 * r["valid_per"] for r in records], "o-", label="valid")
            ax.set_title("phone error rate (%)")
        ax.legend()
        ax = axes[2]
        for name in records[0].get("train_rates_hz", {}):
            ax.plot(ep, [r["train_rates_hz"].get(name, np.nan) for r in records], "o-",
                    label=name)
        ax.set_title("mean firing rate, train (Hz)")
        ax.legend(fontsize=7)
        ax = axes[3]
        ax.semilogy(ep, [r["lr"] for r in records], "o-")
        ax.set_title("learning rate")
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_rate_distributions(neuron_rates_hz: dict[str, list[float]], out: str | Path,
                            r_min_hz: float | None = None, r_max_hz: float | None = None
                            ) -> Path:
    """Histogram of per-neuron firing rates (Hz, log axis) for every population, with the
    regulariser's band marked."""
    plt = _plt()
    out = Path(out)
    names = list(neuron_rates_hz)
    fig, axes = plt.subplots(1, max(1, len(names)), figsize=(4 * max(1, len(names)), 3.2),
                             squeeze=False)
    for ax, name in zip(axes[0], names, strict=False):
        r = np.asarray(neuron_rates_hz[name], dtype=float)
        silent = int((r <= 0).sum())
        pos = r[r > 0]
        if pos.size:
            bins = np.logspace(np.log10(max(pos.min(), 1e-2)), np.log10(pos.max() * 1.01 + 1e-9),
                               30)
            ax.hist(pos, bins=bins, color="C0")
            ax.set_xscale("log")
        for bound in (r_min_hz, r_max_hz):
            if bound:
                ax.axvline(bound, color="C3", ls="--", lw=1)
        ax.set_title(f"{name}: {r.size} neurons, {silent} silent\nmean {r.mean():.1f} Hz",
                     fontsize=9)
        ax.set_xlabel("firing rate (Hz)")
    axes[0][0].set_ylabel("neurons")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_confusion(confusion: list[list[int]], classes: list[str], out: str | Path) -> Path:
    """Row-normalised confusion matrix (true class in rows)."""
    plt = _plt()
    out = Path(out)
    c = np.asarray(confusion, dtype=float)
    norm = c / np.maximum(1.0, c.sum(1, keepdims=True))
    size = max(5.0, 0.22 * len(classes) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(norm, cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize=7)
    ax.set_yticks(range(len(classes)), classes, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(im, ax=ax, fraction=0.04)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
