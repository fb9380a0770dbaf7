"""Task of the forecast stage: fit the measured learning curve and forecast it (seconds; no
torch: the points come from the learning_curve stage)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from prefect import task

from frugal import catalog
from frugal.config import ForecastConfig
from frugal.curves import at_labels_bought, fit_curve, forecast_report
from frugal.hashing import data_md5
from frugal.plots import plot_forecast
from orchestration.tracking import Tracker


@task(name="forecast")
def forecast_task(cfg: ForecastConfig, tracker: Tracker) -> dict:
    """Fit learning curves to the measured points; forecast budgets, maximum and target."""
    points = pd.read_csv(cfg.points)
    pool_size = len(pd.read_parquet(cfg.pool_data))
    curve = fit_curve(points[["n_labels", "score"]])
    at = sorted({*cfg.at, pool_size})
    report = {
        **forecast_report(curve, at, cfg.target),
        "pool_size": pool_size,
        "labels_measured": int(points["n_labels"].max()),
        "at_labels_bought": at_labels_bought(curve, points),
        "points": {"order": cfg.order, "fractions": cfg.fractions, "seeds": cfg.seeds},
    }
    cfg.output.parent.mkdir(parents=True, exist_ok=True)
    catalog.FORECAST.write_file(cfg.output, catalog.FORECAST.check(report))
    grid = np.geomspace(points["n_labels"].min(), max(at) * 1.5, 200)
    plot_forecast(
        points,
        grid,
        *curve.predict(grid),
        cfg.plot,
        f"learning curve forecast (fitted on {len(points)} fine-tuning runs)",
    )

    run_id = tracker.stage_run(
        run_name="forecast",
        tags={"frugal.stage": "forecast", "dvc.md5.labeled": data_md5(cfg.labeled_data)},
    )
    for row in points.itertuples():
        tracker.log_metrics(run_id, {f"accuracy.seed{row.seed}": row.score}, int(row.n_labels))
    for entry in report["forecasts"]:
        tracker.log_metrics(run_id, {"forecast_accuracy": entry["score"]}, entry["n_labels"])
    metrics = {"max_score": report["max_score"]["score"]}
    needed = report.get("labels_for_target", {}).get("n_labels")
    if needed is not None:
        metrics["labels_for_target"] = float(needed)
    tracker.log_metrics(run_id, metrics)
    tracker.log_artifacts(run_id, (cfg.points, cfg.output, cfg.plot), "forecast")
    return report
