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
        ctc = "valid_per" in records[0]
        ax.set_title("task loss" + (" (CTC, per utterance)" if ctc else " (cross-entropy)"))
        ax.set_ylabel("CTC loss (nats per utterance)" if ctc else "cross-entropy (nats)")
        ax.legend()
        ax = axes[1]
        if "valid_accuracy" in records[0]:
            ax.plot(ep, [100 * r["train_accuracy"] for r in records], "o-", label="train")
            ax.plot(ep, [100 * r["valid_accuracy"] for r in records], "o-", label="valid")
            ax.set_title("accuracy")
            ax.set_ylabel("accuracy (%)")
        else:
            ax.plot(ep, [100 * r["valid_per"] for r in records], "o-", label="valid")
            ax.set_title("phone error rate (PER)")
            ax.set_ylabel("PER (%)")
        ax.legend()
        ax = axes[2]
        for name in records[0].get("train_rates_hz", {}):
            ax.plot(ep, [r["train_rates_hz"].get(name, np.nan) for r in records], "o-",
                    label=name)
        ax.set_title("mean firing rate per population (train)")
        ax.set_ylabel("firing rate (Hz)")
        ax.legend(fontsize=7)
        ax = axes[3]
        ax.semilogy(ep, [r["lr"] for r in records], "o-", label="at the end of the epoch")
        ax.set_title("learning rate")
        ax.set_ylabel("learning rate")
        ax.legend(fontsize=7)
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
        ax.hist([], color="C0", label="neurons (silent ones not shown)")
        for bound, colour, what in ((r_min_hz, "C3", "lower"), (r_max_hz, "C1", "upper")):
            if bound:
                ax.axvline(bound, color=colour, ls="--", lw=1,
                           label=f"regulariser's {what} bound, {bound:g} Hz")
        ax.set_title(f"{name}: {r.size} neurons, {silent} silent\nmean {r.mean():.1f} Hz",
                     fontsize=9)
        ax.set_xlabel("firing rate (Hz, log scale)")
        ax.set_ylabel("neurons")
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("Firing rate of every neuron on the test set, per population", fontsize=10)
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
    ax.set_xlabel("predicted keyword")
    ax.set_ylabel("true keyword")
    ax.set_title(f"Confusion matrix on the test set ({int(c.sum())} clips, {len(classes)} "
                 "classes)\nrow-normalised: each row is one true keyword")
    fig.colorbar(im, ax=ax, fraction=0.04, label="share of the true keyword's clips")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
