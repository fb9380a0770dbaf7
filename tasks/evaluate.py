"""Task of the evaluate stage: every model as it serves (model.onnx on ONNX Runtime) on the dev
split (where the champion is chosen) and the test split (reported only), its differences to the
baseline with bootstrap intervals, and the profile stage's modeled energy and measured CPU
figures side by side (reports/metrics.json). Each model's registered version gets the tags and
the one-line description that tell it apart in the MLflow UI: here all its figures are known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from prefect import task

from frugal import catalog
from frugal.config import EvaluateConfig
from frugal.errors import DataError
from frugal.evaluation import (
    baseline_differences,
    champion_energy,
    classification_metrics,
    compare_models,
    plot_confusion,
    within_budget,
)
from frugal.hashing import data_md5
from frugal.plots import plot_pareto
from frugal.runtime import OnnxClassifier
from orchestration import tracking
from orchestration.tracking import Tracker

# The workload of a registered version's description: one request per utterance.
DESCRIBED_WORKLOAD = "batch"


@task(name="evaluate")
def evaluate_task(model_dirs: list[Path], cfg: EvaluateConfig, tracker: Tracker) -> Path:
    """Every model as it serves on dev, selection and test; differences to the first (the base model),
    champion and Pareto front; logged per model and to the parent run."""
    profile = catalog.PROFILE.read_file(cfg.profile_report)
    missing = [m.name for m in model_dirs if m.name not in profile]
    if missing:
        raise DataError(
            f"{cfg.profile_report} has no profile of {missing}; run `dvc repro profile`"
        )
    test = pd.read_parquet(cfg.test_data)
    dev = pd.read_parquet(cfg.dev_data)
    selection = pd.read_parquet(cfg.selection_data)
    test_md5 = data_md5(cfg.test_data)
    correct: dict[str, np.ndarray] = {}
    dev_correct: dict[str, np.ndarray] = {}
    selection_correct: dict[str, np.ndarray] = {}
    report: dict[str, dict] = {}  # per-class report and confusion matrix
    predictions = []
    run_ids: dict[str, str] = {}
    for model_dir in model_dirs:
        name = model_dir.name
        clf = OnnxClassifier(model_dir, cfg.threads)  # as it serves
        probs = clf.predict_proba(test["text"].astype(str).tolist(), batch_size=cfg.batch_size)
        dev_correct[name] = _correct(clf, dev, cfg.batch_size)
        selection_correct[name] = _correct(clf, selection, cfg.batch_size)
        metrics = classification_metrics(test["label"].astype(str).tolist(), probs, clf.labels)
        metrics["size_mb"] = round((model_dir / "model.onnx").stat().st_size / 1e6, 3)
        report[name] = metrics
        predictions.append(
            pd.DataFrame(
                {
                    "model": name,
                    "id": test["id"].to_numpy(),
                    "actual": test["label"].astype(str).to_numpy(),
                    "predicted": [clf.labels[i] for i in probs.argmax(1)],
                }
            )
        )
        correct[name] = (predictions[-1]["actual"] == predictions[-1]["predicted"]).to_numpy()
        plot_path = cfg.plots_dir / f"confusion_{name}.png"
        plot_confusion(metrics["confusion"], clf.labels, f"{name}: test confusion", plot_path)

        run_id = tracker.model_run(model_dir, "evaluate")
        tracker.set_tags(run_id, {"dvc.md5.test": test_md5})
        run_ids[name] = run_id

    baseline = model_dirs[0].name  # the base model: every difference is against it
    differences = baseline_differences(
        correct, dev_correct, selection_correct, baseline, cfg.bootstrap_resamples, cfg.seed
    )
    for name, metrics in report.items():
        metrics.update(differences[name])
    # headline figures (reports/metrics.json, dvc metrics), champion, Pareto front
    comparison = compare_models(report, profile, cfg.accuracy_budget, cfg.champion_profile)

    for name, metrics in report.items():
        run_id = run_ids[name]
        logged = {f"test_{key}": metrics[key] for key in ("accuracy", "macro_f1", "ece", "size_mb")}
        logged["dev_accuracy"] = metrics["dev_accuracy"]
        logged["selection_accuracy"] = metrics["selection_accuracy"]
        for key, value in metrics["accuracy_vs_baseline"].items():
            logged[f"test_accuracy_vs_baseline.{key}"] = value
        tracker.log_metrics(run_id, logged)
        tracker.log_dict(run_id, metrics, "evaluation/metrics.json")
        plot = cfg.plots_dir / f"confusion_{name}.png"
        tracker.log_artifacts(run_id, [plot], "evaluation")
    # Every version joins the champion pool of its data, profile and budget; the alias goes to
    # the rule's pick over the pool, whichever pipeline of a team wrote it.
    raw_md5 = tracker.run_tag(tracker.parent_run_id, "dvc.md5.raw")
    pool = tracking.champion_pool_key(raw_md5, cfg.champion_profile, cfg.accuracy_budget)
    for name, metrics in report.items():
        tags, description = version_summary_of(name, metrics, profile[name], raw_md5, cfg)
        entry = comparison.summary[name]
        tags |= tracking.champion_tags(
            pool,
            within_budget(entry.selection_accuracy_vs_baseline.difference, cfg.accuracy_budget),
            champion_energy(entry.modeled_uj_per_utterance[cfg.champion_profile]),
        )
        tracker.describe_versions(run_ids[name], tags, description)
    tracker.promote_champion(pool)
    plot_pareto(comparison.points, cfg.pareto_plot, f"{cfg.champion_profile} profile")

    cfg.output.parent.mkdir(parents=True, exist_ok=True)
    catalog.METRICS.write_file(cfg.output, comparison.summary)
    catalog.CLASSIFICATION.write_file(cfg.report, catalog.CLASSIFICATION.check(report))
    pd.concat(predictions).to_csv(cfg.predictions, index=False)
    tracker.log_reports(cfg.pareto_plot, cfg.output, cfg.report)
    tracker.log_metrics(
        tracker.parent_run_id,
        {
            f"{name}.{key}": metrics[src]
            for name, metrics in report.items()
            for key, src in (("test_accuracy", "accuracy"), ("test_macro_f1", "macro_f1"))
        },
    )
    return cfg.output


def _correct(clf: OnnxClassifier, split: pd.DataFrame, batch_size: int) -> np.ndarray:
    probs = clf.predict_proba(split["text"].astype(str).tolist(), batch_size)
    return np.array(clf.labels)[probs.argmax(1)] == split["label"].astype(str).to_numpy()


def version_summary_of(
    name: str, metrics: dict, profiled: catalog.ModelProfile, raw_md5: str, cfg: EvaluateConfig
) -> tuple[dict[str, str], str]:
    """`tracking.version_summary` of one model: its accuracies, and its modeled energy on the
    champion's profile, batch workload (else the first profiled)."""
    by_workload = profiled.modeled.uj_per_utterance[cfg.champion_profile]
    workload = DESCRIBED_WORKLOAD if DESCRIBED_WORKLOAD in by_workload else next(iter(by_workload))
    return tracking.version_summary(
        name,
        raw_md5,
        selection_accuracy=metrics["selection_accuracy"],
        test_accuracy=metrics["accuracy"],
        modeled_uj=by_workload[workload],
        profile=cfg.champion_profile,
        workload=workload,
    )
