"""Task of the train stage: fine-tune on the labeled set, save, log and register."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task

from frugal import catalog
from frugal.config import TrainConfig
from frugal.hashing import data_md5
from frugal.modeling import save_classifier
from frugal.training import fine_tune
from orchestration.progress import Bars
from orchestration.tracking import Tracker


@task(name="train")
def train_task(cfg: TrainConfig, tracker: Tracker) -> Path:
    """Fine-tune on the bought labels, keep the best checkpoint on dev; save, log, register."""
    labeled, dev = pd.read_parquet(cfg.labeled_data), pd.read_parquet(cfg.dev_data)
    logger = get_run_logger()
    with Bars() as bars:

        def progress(step: int, total: int, info: dict[str, float]) -> None:
            bars("train", step, total, loss=info["loss"])
            if "dev_accuracy" in info:
                logger.info(
                    "step %d/%d: train loss %.3f, dev accuracy %.4f",
                    step,
                    total,
                    info["loss"],
                    info["dev_accuracy"],
                )

        result = fine_tune(labeled, dev, cfg, progress=progress)
    save_classifier(result.classifier, cfg.output_dir)
    summary = {
        "n_labeled": len(labeled),
        "best_dev_accuracy": result.best_dev_accuracy,
        "best_step": result.best_step,
        "steps": result.steps,
        "planned_steps": result.planned_steps,
        "train_seconds": round(result.train_seconds, 1),
    }
    catalog.TRAIN.write_file(
        cfg.history, catalog.TRAIN.check({**summary, "history": result.history})
    )

    run_id = tracker.own_model_run(
        cfg.output_dir,
        run_name=cfg.output_dir.name,
        tags={
            "frugal.stage": "train",
            "dvc.md5.labeled": data_md5(cfg.labeled_data),
            "dvc.md5.dev": data_md5(cfg.dev_data),
        },
    )
    for point in result.history:
        metrics = {"dev_accuracy": point["dev_accuracy"], "train_loss": point["train_loss"]}
        tracker.log_metrics(run_id, metrics, step=int(point["step"]))
    tracker.log_metrics(run_id, summary)
    tracker.register(run_id, cfg.output_dir)
    return cfg.output_dir
