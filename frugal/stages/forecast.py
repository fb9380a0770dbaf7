"""The forecast stage: fit the measured learning curve and forecast it (seconds; no torch: the
points come from the learning_curve stage)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from frugal import catalog
from frugal.config import Params
from frugal.curves import at_labels_bought, fit_curve, forecast_report
from frugal.hashing import data_md5
from frugal.plots import plot_forecast
from frugal.stages import Context, Outcome, RunLog


def run(params: Params, ctx: Context) -> Outcome:
    """Fit learning curves to the measured points; forecast budgets, maximum and target."""
    cfg = params.forecast
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
    metrics = {"max_score": report["max_score"]["score"]}
    needed = report.get("labels_for_target", {}).get("n_labels")
    if needed is not None:
        metrics["labels_for_target"] = float(needed)
    steps = [(int(r.n_labels), {f"accuracy.seed{r.seed}": r.score}) for r in points.itertuples()]
    steps += [(e["n_labels"], {"forecast_accuracy": e["score"]}) for e in report["forecasts"]]
    stage_run = RunLog(
        run_name="forecast",
        tags={"frugal.stage": "forecast", "dvc.md5.labeled": data_md5(cfg.labeled_data)},
        steps=steps,
        metrics=metrics,
        artifacts=(cfg.points, cfg.output, cfg.plot),
        folder="forecast",
    )
    return Outcome(value=report, runs=[stage_run])
