"""The learning_curve stage: the fine-tuned model's learning curve (one fine-tuning per point;
the whole set's point at train.seed is the train stage's model)."""

from __future__ import annotations

import pandas as pd

from frugal import catalog
from frugal.config import Params
from frugal.model.modeling import load_classifier
from frugal.model.training import Trained, learning_curve_points
from frugal.stages import Context, Outcome


def run(params: Params, ctx: Context) -> Outcome:
    """Fine-tune on growing shares of the bought labels; write the (n_labels, score) points."""
    cfg = params.learning_curve
    history = catalog.TRAIN.read(params)
    trained = Trained(
        load_classifier(params.train.output_dir),
        params.train.seed,
        history.steps,
        history.train_seconds,
    )
    total, done = len(cfg.fractions) * len(cfg.seeds), [0]

    def progress(row: dict[str, float]) -> None:
        done[0] += 1
        ctx.progress("learning curve", done[0], total, accuracy=row["score"])
        ctx.log(
            f"{row['n_labels']:.0f} labels, seed {row['seed']:.0f}: accuracy {row['score']:.4f} "
            f"({row['steps']:.0f} steps, {row['train_seconds']:.0f} s)"
        )

    points = learning_curve_points(
        pd.read_parquet(cfg.labeled_data),
        pd.read_parquet(params.train.dev_data),
        pd.read_parquet(cfg.eval_data),
        cfg.fractions,
        cfg.seeds,
        params.train,
        progress,
        order=cfg.order,
        trained=trained,
    )
    cfg.points.parent.mkdir(parents=True, exist_ok=True)
    points.round(6).to_csv(cfg.points, index=False)
    return Outcome(value=cfg.points)
