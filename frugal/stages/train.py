"""The train stage: fine-tune on the bought labels, keep the best checkpoint on dev; save the
model, its training history, and record and register it."""

from __future__ import annotations

import pandas as pd

from frugal import catalog
from frugal.config import Params
from frugal.hashing import data_md5
from frugal.model.export import save_classifier
from frugal.model.training import fine_tune
from frugal.stages import Context, Outcome, RunLog


def run(params: Params, ctx: Context) -> Outcome:
    """Fine-tune, save, write the history; the model's run registers it."""
    cfg = params.train
    labeled, dev = pd.read_parquet(cfg.labeled_data), pd.read_parquet(cfg.dev_data)

    def progress(step: int, total: int, info: dict[str, float]) -> None:
        ctx.progress("train", step, total, loss=info["loss"])
        if "dev_accuracy" in info:
            ctx.log(
                f"step {step}/{total}: train loss {info['loss']:.3f}, "
                f"dev accuracy {info['dev_accuracy']:.4f}"
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
    catalog.TRAIN.write(params, {**summary, "history": result.history})
    model = RunLog(
        run_name=cfg.output_dir.name,
        model_dir=cfg.output_dir,
        tags={
            "frugal.stage": "train",
            "dvc.md5.labeled": data_md5(cfg.labeled_data),
            "dvc.md5.dev": data_md5(cfg.dev_data),
        },
        steps=[
            (int(p["step"]), {"dev_accuracy": p["dev_accuracy"], "train_loss": p["train_loss"]})
            for p in result.history
        ],
        metrics=summary,
        register=True,
    )
    return Outcome(value=cfg.output_dir, runs=[model])
