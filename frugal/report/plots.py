"""Figures the stages write next to their reports (PNG, matplotlib's Agg backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from frugal.report.evaluation import pareto_front


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


def plot_energy_layers(layers: pd.DataFrame, path: Path, title: str) -> None:
    """Modeled µJ per utterance by layer, stacked DRAM / SRAM / compute: one panel per
    (workload, profile). `layers`: columns workload, profile, layer, dram_pj, sram_pj, compute_pj
    (layers in model order)."""
    plt = _pyplot()
    workloads = list(dict.fromkeys(layers["workload"]))
    profiles = list(dict.fromkeys(layers["profile"]))
    fig, axes = plt.subplots(
        len(workloads),
        len(profiles),
        figsize=(3.6 * len(profiles), 2.8 * len(workloads)),
        squeeze=False,
    )
    parts = (("dram_pj", "DRAM reads", "#d62728"), ("sram_pj", "SRAM reads", "#2ca02c"))
    parts += (("compute_pj", "compute (MACs)", "#1f77b4"),)
    for i, workload in enumerate(workloads):
        for j, profile in enumerate(profiles):
            ax = axes[i][j]
            panel = layers[(layers["workload"] == workload) & (layers["profile"] == profile)]
            x = np.arange(len(panel))
            bottom = np.zeros(len(panel))
            for column, label, color in parts:
                values = panel[column].to_numpy() / 1e6
                ax.bar(x, values, bottom=bottom, label=label, color=color, width=0.7)
                bottom += values
            ax.set_xticks(x, panel["layer"], rotation=60, ha="right", fontsize=7)
            ax.set_title(f"{profile} · {workload}", fontsize=9)
            ax.grid(axis="y", alpha=0.3)
            if j == 0:
                ax.set_ylabel("µJ per utterance (modeled)", fontsize=8)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_continual(steps: pd.DataFrame, path: Path, title: str) -> None:
    """Average test accuracy over the classes seen so far, per update step, one line per method.
    `steps`: columns method, step, average_accuracy (step 0 as method "initial", shared)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    initial = steps[steps["method"] == "initial"]
    for method, group in steps[steps["method"] != "initial"].groupby("method", sort=False):
        line = pd.concat([initial, group]).sort_values("step")
        ax.plot(line["step"], line["average_accuracy"], marker="o", label=str(method))
    ax.set_xticks(sorted(steps["step"].unique()))
    _finish(plt, fig, ax, "update step", "average accuracy, classes seen so far", title, path)


def plot_pareto(points: pd.DataFrame, path: Path, title: str) -> None:
    """Test accuracy vs modeled µJ per utterance of every model, one panel per workload, the
    Pareto front (no other model both cheaper and more accurate) joined by a line.
    `points`: columns model, workload, uj, accuracy."""
    plt = _pyplot()
    workloads = list(dict.fromkeys(points["workload"]))
    fig, axes = plt.subplots(1, len(workloads), figsize=(5.5 * len(workloads), 4.2), squeeze=False)
    for ax, workload in zip(axes[0], workloads, strict=True):
        panel = points[points["workload"] == workload].sort_values("uj")
        ax.scatter(panel["uj"], panel["accuracy"], color="#1f77b4", zorder=3)
        for row in panel.itertuples():
            ax.annotate(
                row.model,
                (row.uj, row.accuracy),
                fontsize=7,
                xytext=(4, 3),
                textcoords="offset points",
            )
        front = panel[pareto_front(panel["uj"], panel["accuracy"])]
        ax.plot(front["uj"], front["accuracy"], color="#d62728", label="Pareto front")
        ax.set_xscale("log")
        _finish(
            plt,
            None,
            ax,
            "modeled µJ per utterance (log)",
            "test accuracy",
            f"{title} · {workload}",
            None,
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _finish(plt, fig, ax, xlabel: str, ylabel: str, title: str, path: Path | None) -> None:
    """Labels, grid and legend, then save the PNG (creating its folder) and free the figure
    (`path` None: the caller saves a figure of several panels)."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
