"""Classification quality of a model on held-out text: accuracy, macro-F1, calibration,
per-class report and confusion matrix; and the comparison of several models: differences to the
baseline with bootstrap intervals, the champion, and the energy × accuracy Pareto front."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import bootstrap
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from frugal.catalog import METRICS, Metrics, ModelProfile, Profile


def expected_calibration_error(probs: np.ndarray, y_true: np.ndarray, n_bins: int = 15) -> float:
    """Weighted mean |accuracy - confidence| over equal-width confidence bins (ECE)."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in np.unique(bins):
        in_bin = bins == b
        ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def classification_metrics(y_true: list[str], probs: np.ndarray, labels: list[str]) -> dict:
    """Metrics of predicted class probabilities `probs` (rows in order of `labels`)."""
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted(set(y_true) - set(index))
    if unknown:
        raise ValueError(f"test labels unknown to the model: {unknown}")
    y = np.array([index[label] for label in y_true])
    pred = probs.argmax(axis=1)
    ids = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y, pred, labels=ids, zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "macro_f1": float(f1_score(y, pred, labels=ids, average="macro", zero_division=0)),
        "ece": expected_calibration_error(probs, y),
        "n_test": len(y),
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion": confusion_matrix(y, pred, labels=ids).tolist(),
    }


def accuracy_difference(
    correct: np.ndarray,
    baseline_correct: np.ndarray,
    n_resamples: int,
    seed: int,
    confidence: float = 0.95,
) -> dict[str, float]:
    """Accuracy of a model minus the baseline's on the same examples, with a paired bootstrap
    interval at `confidence` (resampling examples, so both models see the same resample; keys
    `ci95_low` / `ci95_high` at 0.95)."""
    a = np.asarray(correct, dtype=float)
    b = np.asarray(baseline_correct, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError("correct and baseline_correct must be equal-length 1-D (>= 2 examples)")
    result = bootstrap(
        (a, b),
        lambda x, y, axis: x.mean(axis) - y.mean(axis),
        paired=True,
        vectorized=True,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        random_state=seed,
    )
    level = f"ci{round(100 * confidence)}"
    return {
        "difference": float(a.mean() - b.mean()),
        f"{level}_low": float(result.confidence_interval.low),
        f"{level}_high": float(result.confidence_interval.high),
        "examples": len(a),
    }


def choose_champion(summary: dict[str, dict], budget: float, profile: str) -> str | None:
    """The model with the lowest modeled energy on `profile` (mean over workloads) whose
    accuracy on the *selection* split is at most `budget` below the base model's
    (`selection_accuracy_vs_baseline`, the paired difference; its 90% interval is reported
    beside it). The selection split is apart from the dev texts that scored the compression
    plans, so the plan that dev favoured is checked on questions it has not seen. Test accuracy
    plays no part: it is only reported."""
    eligible = {
        name: champion_energy(s["modeled_uj_per_utterance"][profile])
        for name, s in summary.items()
        if within_budget(s["selection_accuracy_vs_baseline"]["difference"], budget)
    }
    return min(eligible, key=eligible.get) if eligible else None


def within_budget(selection_difference: float, budget: float) -> bool:
    """Whether a model may be champion: its selection accuracy (`selection_difference`: minus
    its base model's, a fraction) at most `budget` below."""
    return selection_difference >= -budget - 1e-12


def champion_energy(uj_by_workload: Mapping[str, float]) -> float:
    """What `choose_champion` minimises: a model's modeled µJ per utterance on the champion's
    profile (workload → µJ), mean over workloads."""
    return float(np.mean(list(uj_by_workload.values())))


def pareto_front(cost: Sequence[float], score: Sequence[float]) -> np.ndarray:
    """Mask of the points no other point dominates: on the front when every cheaper point
    scores strictly less (a point that costs more for the same score is off it)."""
    cost, score = np.asarray(cost, dtype=float), np.asarray(score, dtype=float)
    order = np.lexsort((-score, cost))  # cheapest first; at equal cost the best score first
    best_before = np.maximum.accumulate(np.concatenate([[-np.inf], score[order]]))[:-1]
    mask = np.zeros(len(cost), dtype=bool)
    mask[order] = score[order] > best_before
    return mask


def headline_metrics(metrics: dict) -> dict:
    """The figures worth a column in `dvc metrics show`: overall scores and per-class F1."""
    keys = ("accuracy", "macro_f1", "ece", "n_test", "size_mb")
    return {key: metrics[key] for key in keys if key in metrics} | {
        "f1": {label: m["f1"] for label, m in metrics["per_class"].items()}
    }


def baseline_differences(
    test_correct: Mapping[str, np.ndarray],
    dev_correct: Mapping[str, np.ndarray],
    selection_correct: Mapping[str, np.ndarray],
    baseline: str,
    n_resamples: int,
    seed: int,
) -> dict[str, dict]:
    """Per model (in the order of `test_correct`): its test, dev and selection accuracies minus
    the `baseline` model's, with paired bootstrap intervals (`accuracy_difference`; 95%, and
    90% on selection, where the champion is chosen). `*_correct`: per model, whether each
    example of the split was classified correctly."""
    return {
        name: {
            "accuracy_vs_baseline": accuracy_difference(
                test_correct[name], test_correct[baseline], n_resamples, seed
            ),
            "accuracy_vs_baseline_ci90": accuracy_difference(
                test_correct[name], test_correct[baseline], n_resamples, seed, 0.90
            ),
            "dev_accuracy": float(dev_correct[name].mean()),
            "dev_accuracy_vs_baseline": accuracy_difference(
                dev_correct[name], dev_correct[baseline], n_resamples, seed
            ),
            "selection_accuracy": float(selection_correct[name].mean()),
            "selection_accuracy_vs_baseline": accuracy_difference(
                selection_correct[name], selection_correct[baseline], n_resamples, seed, 0.90
            ),
        }
        for name in test_correct
    }


def model_summary(metrics: Mapping, profile: ModelProfile) -> dict:
    """One model's entry of reports/metrics.json: the headline test metrics, the differences to
    the baseline (`metrics` holds them, see `baseline_differences`) and the profile stage's
    measured and modeled figures (`profile`: the model's entry of reports/profile.json)."""
    return headline_metrics(metrics) | {
        "accuracy_vs_baseline": metrics["accuracy_vs_baseline"],
        "accuracy_vs_baseline_ci90": metrics["accuracy_vs_baseline_ci90"],
        "dev_accuracy": metrics["dev_accuracy"],
        "dev_accuracy_vs_baseline": metrics["dev_accuracy_vs_baseline"],
        "selection_accuracy": metrics["selection_accuracy"],
        "selection_accuracy_vs_baseline": metrics["selection_accuracy_vs_baseline"],
        "measured_latency_ms_p50": profile.measured.latency_ms_p50,
        "measured_latency_ms_p95": profile.measured.latency_ms_p95,
        "measured_weights_bytes": profile.measured.weights_bytes,
        "modeled_uj_per_utterance": profile.modeled.uj_per_utterance,
    }


def energy_accuracy_points(summary: Mapping[str, Mapping], profile: str) -> pd.DataFrame:
    """One row per model and workload: modeled µJ per utterance on `profile` (column `uj`) and
    test accuracy. Columns: model, workload, uj, accuracy."""
    return pd.DataFrame(
        [
            {"model": name, "workload": workload, "uj": uj, "accuracy": s["accuracy"]}
            for name, s in summary.items()
            for workload, uj in s["modeled_uj_per_utterance"][profile].items()
        ]
    )


def pareto_membership(points: pd.DataFrame) -> dict[str, dict[str, bool]]:
    """Per model, per workload (sorted): whether the model is on that workload's energy ×
    accuracy Pareto front (`pareto_front`). `points`: as `energy_accuracy_points` returns."""
    membership: dict[str, dict[str, bool]] = {}
    for workload, panel in points.groupby("workload"):
        on_front = pareto_front(panel["uj"], panel["accuracy"])
        for name, on in zip(panel["model"], on_front, strict=True):
            membership.setdefault(name, {})[str(workload)] = bool(on)
    return membership


@dataclass(frozen=True)
class Comparison:
    """The models side by side: reports/metrics.json's content, the champion, and the points of
    the Pareto plot."""

    summary: Metrics  # per model: `model_summary` + champion + pareto_front
    champion: str | None  # None: no model within the accuracy budget
    points: pd.DataFrame  # `energy_accuracy_points` on the champion's profile


def compare_models(
    metrics: Mapping[str, Mapping],
    profile: Profile,
    accuracy_budget: float,
    champion_profile: str,
) -> Comparison:
    """Summarize every model (`metrics`: per model, its test metrics with the differences to
    the baseline; `profile`: reports/profile.json), choose the champion (`choose_champion`)
    and mark who is on each workload's Pareto front on `champion_profile`."""
    summary = {name: model_summary(m, profile[name]) for name, m in metrics.items()}
    champion = choose_champion(summary, accuracy_budget, champion_profile)
    for name in summary:
        summary[name]["champion"] = name == champion
    points = energy_accuracy_points(summary, champion_profile)
    for name, fronts in pareto_membership(points).items():
        summary[name]["pareto_front"] = fronts
    return Comparison(METRICS.check(summary), champion, points)


def plot_confusion(matrix: list[list[int]], labels: list[str], title: str, path: Path) -> None:
    """Save the confusion matrix (rows: true class, columns: predicted) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(1.2 + 0.7 * len(labels), 1 + 0.6 * len(labels)))
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(
                j,
                i,
                m[i, j],
                ha="center",
                va="center",
                color="white" if m[i, j] > m.max() / 2 else "black",
                fontsize=8,
            )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
