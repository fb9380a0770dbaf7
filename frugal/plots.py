"""Figures the stages write next to their reports (PNG, matplotlib's Agg backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_annotation_curves(rounds: pd.DataFrame, path: Path, title: str) -> None:
    """Proxy accuracy vs labels bought, mean ± sd over seeds, one line per strategy."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for strategy, group in rounds.groupby("strategy", sort=False):
        stats = group.groupby("n_labels")["accuracy"].agg(["mean", "std"]).fillna(0.0)
        n = stats.index.to_numpy()
        ax.plot(n, stats["mean"], label=str(strategy), linewidth=1.5)
        ax.fill_between(n, stats["mean"] - stats["std"], stats["mean"] + stats["std"], alpha=0.15)
    _finish(plt, fig, ax, "labels bought", "proxy accuracy", title, path)


def plot_forecast(
    points: pd.DataFrame,
    n_grid: np.ndarray,
    score: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    path: Path,
    title: str,
) -> None:
    """Measured points, the forecast curve and its 90% band (log-scaled label axis)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.fill_between(n_grid, low, high, alpha=0.2, label="90% interval")
    ax.plot(n_grid, score, label="forecast")
    ax.scatter(points["n_labels"], points["score"], s=18, color="black", label="measured", zorder=3)
    ax.set_xscale("log")
    _finish(plt, fig, ax, "labels", "accuracy", title, path)


def _finish(plt, fig, ax, xlabel: str, ylabel: str, title: str, path: Path) -> None:
    """Labels, grid and legend, then save the PNG (creating its folder) and free the figure."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
