"""The evaluate stage: every model as it serves (model.onnx on ONNX Runtime) on the dev split,
the selection split (where the champion is chosen) and the test split (reported only), its
differences to the base model with bootstrap intervals, and the profile stage's modeled energy
and measured CPU figures side by side (reports/metrics.json). Each model's registered version
gets the tags and the one-line description that tell it apart in the MLflow UI (here all its
figures are known), and its entry in the champion pool."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from frugal import catalog, registry
from frugal.config import EvaluateConfig, Params
from frugal.errors import DataError
from frugal.hashing import data_md5
from frugal.model.runtime import OnnxClassifier
from frugal.report.evaluation import (
    baseline_differences,
    champion_energy,
    classification_metrics,
    compare_models,
    plot_confusion,
    within_budget,
)
from frugal.report.plots import plot_pareto
from frugal.stages import Context, Outcome, RunLog, Version

# The workload of a registered version's description: one request per utterance.
DESCRIBED_WORKLOAD = "batch"


def run(params: Params, ctx: Context) -> Outcome:
    """Every model on dev, selection and test; differences to the first (the base model),
    champion and Pareto front."""
    cfg, model_dirs = params.evaluate, params.models()
    profile = catalog.PROFILE.read_file(cfg.profile_report)
    missing = [m.name for m in model_dirs if m.name not in profile]
    if missing:
        raise DataError(
            f"{cfg.profile_report} has no profile of {missing}; run `dvc repro profile`"
        )
    splits = {
        split: pd.read_parquet(path)
        for split, path in (
            ("test", cfg.test_data),
            ("dev", cfg.dev_data),
            ("selection", cfg.selection_data),
        )
    }
    correct: dict[str, dict[str, np.ndarray]] = {"test": {}, "dev": {}, "selection": {}}
    report: dict[str, dict] = {}  # per-class report and confusion matrix
    predictions = []
    for model_dir in model_dirs:
        report[model_dir.name], predicted = _evaluate(model_dir, splits, correct, cfg)
        predictions.append(predicted)
    baseline = model_dirs[0].name  # the base model: every difference is against it
    differences = baseline_differences(
        correct["test"], correct["dev"], correct["selection"], baseline,
        cfg.bootstrap_resamples, cfg.seed,
    )  # fmt: skip
    for name, metrics in report.items():
        metrics.update(differences[name])
    # headline figures (reports/metrics.json, dvc metrics), champion, Pareto front
    comparison = compare_models(report, profile, cfg.accuracy_budget, cfg.champion_profile)
    plot_pareto(comparison.points, cfg.pareto_plot, f"{cfg.champion_profile} profile")
    cfg.output.parent.mkdir(parents=True, exist_ok=True)
    catalog.METRICS.write(params, comparison.summary)
    catalog.CLASSIFICATION.write(params, report)
    pd.concat(predictions).to_csv(cfg.predictions, index=False)

    # Every version joins the champion pool of its data, profile and budget; the alias goes to
    # the rule's pick over the pool, whichever pipeline of a team wrote it.
    raw_md5, test_md5 = data_md5(params.ingest.output), data_md5(cfg.test_data)
    pool = registry.champion_pool_key(raw_md5, cfg.champion_profile, cfg.accuracy_budget)
    runs = []
    for model_dir in model_dirs:
        name = model_dir.name
        entry = comparison.summary[name]
        tags, description = version_summary_of(name, report[name], profile[name], raw_md5, cfg)
        tags |= registry.champion_tags(
            pool,
            within_budget(entry.selection_accuracy_vs_baseline.difference, cfg.accuracy_budget),
            champion_energy(entry.modeled_uj_per_utterance[cfg.champion_profile]),
        )
        version = Version(tags, description)
        runs.append(_run_log(model_dir, report[name], test_md5, version, cfg))
    return Outcome(
        value=cfg.output,
        reports=(cfg.pareto_plot, cfg.output, cfg.report),
        runs=runs,
        parent_metrics={
            f"{name}.{key}": metrics[src]
            for name, metrics in report.items()
            for key, src in (("test_accuracy", "accuracy"), ("test_macro_f1", "macro_f1"))
        },
        champion_pool=pool,
    )


def _evaluate(
    model_dir: Path,
    splits: dict[str, pd.DataFrame],
    correct: dict[str, dict[str, np.ndarray]],
    cfg: EvaluateConfig,
) -> tuple[dict, pd.DataFrame]:
    """One model as it serves: its test metrics and predictions, its confusion plot; records
    which examples of each split it gets right in `correct`."""
    name, test = model_dir.name, splits["test"]
    clf = OnnxClassifier(model_dir, cfg.threads)  # as it serves
    probs = clf.predict_proba(test["text"].astype(str).tolist(), batch_size=cfg.batch_size)
    correct["dev"][name] = _correct(clf, splits["dev"], cfg.batch_size)
    correct["selection"][name] = _correct(clf, splits["selection"], cfg.batch_size)
    metrics = classification_metrics(test["label"].astype(str).tolist(), probs, clf.labels)
    metrics["size_mb"] = round((model_dir / "model.onnx").stat().st_size / 1e6, 3)
    predicted = pd.DataFrame(
        {
            "model": name,
            "id": test["id"].to_numpy(),
            "actual": test["label"].astype(str).to_numpy(),
            "predicted": [clf.labels[i] for i in probs.argmax(1)],
        }
    )
    correct["test"][name] = (predicted["actual"] == predicted["predicted"]).to_numpy()
    plot_path = cfg.plots_dir / f"confusion_{name}.png"
    plot_confusion(metrics["confusion"], clf.labels, f"{name}: test confusion", plot_path)
    return metrics, predicted


def _correct(clf: OnnxClassifier, split: pd.DataFrame, batch_size: int) -> np.ndarray:
    probs = clf.predict_proba(split["text"].astype(str).tolist(), batch_size)
    return np.array(clf.labels)[probs.argmax(1)] == split["label"].astype(str).to_numpy()


def _run_log(
    model_dir: Path, metrics: dict, test_md5: str, version: Version, cfg: EvaluateConfig
) -> RunLog:
    logged = {f"test_{key}": metrics[key] for key in ("accuracy", "macro_f1", "ece", "size_mb")}
    logged["dev_accuracy"] = metrics["dev_accuracy"]
    logged["selection_accuracy"] = metrics["selection_accuracy"]
    for key, value in metrics["accuracy_vs_baseline"].items():
        logged[f"test_accuracy_vs_baseline.{key}"] = value
    return RunLog(
        model_dir=model_dir,
        tags={"dvc.md5.test": test_md5},
        metrics=logged,
        dicts={"evaluation/metrics.json": metrics},
        artifacts=(cfg.plots_dir / f"confusion_{model_dir.name}.png",),
        folder="evaluation",
        version=version,
    )


def version_summary_of(
    name: str, metrics: dict, profiled: catalog.ModelProfile, raw_md5: str, cfg: EvaluateConfig
) -> tuple[dict[str, str], str]:
    """`registry.version_summary` of one model: its accuracies, and its modeled energy on the
    champion's profile, batch workload (else the first profiled)."""
    by_workload = profiled.modeled.uj_per_utterance[cfg.champion_profile]
    workload = DESCRIBED_WORKLOAD if DESCRIBED_WORKLOAD in by_workload else next(iter(by_workload))
    return registry.version_summary(
        name,
        raw_md5,
        selection_accuracy=metrics["selection_accuracy"],
        test_accuracy=metrics["accuracy"],
        modeled_uj=by_workload[workload],
        profile=cfg.champion_profile,
        workload=workload,
    )
