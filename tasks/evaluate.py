"""Task of the evaluate stage: metrics of every model on the test split."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from prefect import task

from frugal.config import Params
from frugal.evaluation import classification_metrics, headline_metrics, plot_confusion
from frugal.hashing import data_md5, file_md5
from frugal.modeling import load_classifier, predict_proba
from tasks import tracking


@task(name="evaluate")
def evaluate_task(
    model_dirs: list[Path], test_path: Path, params: Params, parent_run_id: str
) -> Path:
    cfg = params.evaluate
    test = pd.read_parquet(test_path)
    test_md5 = data_md5(test_path)
    summary: dict[str, dict] = {}  # headline figures: reports/metrics.json (dvc metrics)
    report: dict[str, dict] = {}  # per-class report and confusion matrix
    predictions = []
    c = tracking.client(params.tracking)
    for model_dir in model_dirs:
        name = model_dir.name
        clf = load_classifier(model_dir)
        probs = predict_proba(clf, test["text"].tolist(), batch_size=cfg.batch_size)
        metrics = classification_metrics(test["label"].astype(str).tolist(), probs, clf.labels)
        metrics["size_mb"] = round(
            sum(f.stat().st_size for f in model_dir.rglob("*") if f.is_file()) / 1e6, 2
        )
        report[name] = metrics
        summary[name] = headline_metrics(metrics)
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
        plot_path = cfg.plots_dir / f"confusion_{name}.png"
        plot_confusion(metrics["confusion"], clf.labels, f"{name}: test confusion", plot_path)

        model_md5 = file_md5(model_dir / "model.safetensors")
        run_id = tracking.find_model_run(params.tracking, model_md5) or tracking.nested_run(
            params,
            parent_run_id,
            run_name=f"evaluate-{name}",
            tags={"frugal.stage": "evaluate", tracking.MODEL_HASH_TAG: model_md5},
        )
        c.set_tag(run_id, "dvc.md5.test", test_md5)
        for key in ("accuracy", "macro_f1", "ece", "size_mb"):
            c.log_metric(run_id, f"test_{key}", float(metrics[key]))
        c.log_dict(run_id, metrics, "evaluation/metrics.json")
        c.log_artifact(run_id, str(plot_path), "evaluation")

    cfg.output.parent.mkdir(parents=True, exist_ok=True)
    cfg.output.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    cfg.report.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    pd.concat(predictions).to_csv(cfg.predictions, index=False)
    c.log_artifact(parent_run_id, str(cfg.output), "reports")
    c.log_artifact(parent_run_id, str(cfg.report), "reports")
    for name, metrics in report.items():
        c.log_metric(parent_run_id, f"{name}.test_accuracy", metrics["accuracy"])
        c.log_metric(parent_run_id, f"{name}.test_macro_f1", metrics["macro_f1"])
    return cfg.output
