"""Task of the learning_curve stage: the fine-tuned model's learning curve (expensive: one
fine-tuning per point, but the whole set's point at train.seed is the train stage's model)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task

from frugal import catalog
from frugal.config import Params
from frugal.modeling import load_classifier
from frugal.training import Trained, learning_curve_points
from orchestration.progress import Bars


@task(name="learning-curve")
def learning_curve_task(params: Params) -> Path:
    """Fine-tune on growing shares of the bought labels; write the (n_labels, score) points."""
    cfg = params.forecast
    logger = get_run_logger()
    labeled = pd.read_parquet(cfg.labeled_data)
    dev = pd.read_parquet(params.train.dev_data)
    evaluation = pd.read_parquet(cfg.eval_data)

    history = catalog.TRAIN.read(params)
    trained = Trained(
        load_classifier(params.train.output_dir),
        params.train.seed,
        history.steps,
        history.train_seconds,
    )
    total = len(cfg.fractions) * len(cfg.seeds)
    done = [0]

    def progress(row: dict[str, float]) -> None:
        done[0] += 1
        bars("learning curve", done[0], total, accuracy=row["score"])
        logger.info(
            "%d labels, seed %d: accuracy %.4f (%d steps, %.0f s)",
            row["n_labels"],
            row["seed"],
            row["score"],
            row["steps"],
            row["train_seconds"],
        )

    with Bars(unit="model") as bars:
        points = learning_curve_points(
            labeled,
            dev,
            evaluation,
            cfg.fractions,
            cfg.seeds,
            params.train,
            progress,
            order=cfg.order,
            trained=trained,
        )
    cfg.points.parent.mkdir(parents=True, exist_ok=True)
    points.round(6).to_csv(cfg.points, index=False)
    return cfg.points
