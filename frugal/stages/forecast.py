"""The forecast stage: fit the measured learning curve and forecast it (seconds; no torch: the
points come from the learning_curve stage)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from frugal import catalog
from frugal.config import ForecastConfig, LearningCurveConfig, Params
from frugal.forecast.conformal import CalibratedForecast
from frugal.forecast.curves import at_labels_bought, fit_curve, forecast_report
from frugal.hashing import data_md5
from frugal.report.plots import plot_forecast
from frugal.stages import Context, Outcome, RunLog


def forecast(
    points: pd.DataFrame, pool_size: int, cfg: ForecastConfig, measured: LearningCurveConfig
) -> tuple[catalog.ForecastReport, CalibratedForecast]:
    """The report of the curve fitted to the measured points (and the curve): budgets, the
    pool's size among them, the maximum, the target's labels, and the fit itself."""
    curve = fit_curve(points[["n_labels", "score"]])
    assert isinstance(curve, CalibratedForecast), "the default method is the calibrated one"
    at = sorted({*cfg.at, pool_size})
    report = {
        **forecast_report(curve, at, cfg.target),
        "pool_size": pool_size,
        "labels_measured": int(points["n_labels"].max()),
        "at_labels_bought": at_labels_bought(curve, points),
        "points": {
            "order": measured.order,
            "fractions": measured.fractions,
            "seeds": measured.seeds,
        },
        "curve": curve.fitted(),  # the report's plan forecasts from it, without fitting again
    }
    return catalog.FORECAST.check(report), curve


def run(params: Params, ctx: Context) -> Outcome:
    """Fit learning curves to the measured points; forecast budgets, maximum and target."""
    cfg, measured = params.forecast, params.learning_curve
    points = pd.read_csv(measured.points)
    report, curve = forecast(points, len(pd.read_parquet(cfg.pool_data)), cfg, measured)
    catalog.FORECAST.write(params, report)
    farthest = max(entry.n_labels for entry in report.forecasts)  # the pool's size or beyond
    grid = np.geomspace(points["n_labels"].min(), farthest * 1.5, 200)
    plot_forecast(
        points,
        grid,
        *curve.predict(grid),
        cfg.plot,
        f"learning curve forecast (fitted on {len(points)} fine-tuning runs)",
    )
    metrics = {"max_score": report.max_score.score}
    if report.labels_for_target is not None and report.labels_for_target.n_labels is not None:
        metrics["labels_for_target"] = float(report.labels_for_target.n_labels)
    steps = [(int(r.n_labels), {f"accuracy.seed{r.seed}": r.score}) for r in points.itertuples()]
    steps += [(e.n_labels, {"forecast_accuracy": e.score}) for e in report.forecasts]
    stage_run = RunLog(
        run_name="forecast",
        tags={"frugal.stage": "forecast", "dvc.md5.labeled": data_md5(measured.labeled_data)},
        steps=steps,
        metrics=metrics,
        artifacts=(measured.points, cfg.output, cfg.plot),
        folder="forecast",
    )
    return Outcome(value=report, runs=[stage_run])
