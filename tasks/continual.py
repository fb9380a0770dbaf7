"""Task of the continual stage: new domains arrive, a model is updated with every method in
continual.methods, and each step's model is tracked in MLflow. The method chosen on dev
(`frugal.continual.choose_shipped`) ships: its last-step model is continual.output_dir and the
registered model's `current` version.

What arrives: with `continual.steps: none` (the default run), only the user's update file
(continual.update_source), applied to train's model with train's labeled data as the old
data; with no update file nothing arrives and train's model stays current. With simulated
steps (`auto` or a list: the continual benchmark), the labeled pool split into domains that
arrive one step at a time, step 0 trained from the pretrained encoder."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from prefect import get_run_logger, task

from frugal import catalog
from frugal.config import ContinualConfig
from frugal.continual import (
    SHIPPED_RULE,
    STATS_FILE,
    ClassStats,
    ablation,
    choose_shipped,
    run_continual,
    summarize_methods,
)
from frugal.domains import domain_steps, update_splits
from frugal.hashing import data_md5
from frugal.modeling import Classifier, load_classifier, save_classifier
from frugal.plots import plot_continual
from orchestration.progress import Bars
from orchestration.tracking import Tracker

CURRENT_ALIAS = "current"
NO_UPDATE = (
    "no update arrived (continual.update_source is null): train's model stays current; set "
    "continual.update_source to a file of new-domain rows in continual.updates_dir"
)


@task(name="continual")
def continual_task(cfg: ContinualConfig, tracker: Tracker) -> Path:
    """Every method through every domain step; every step's model logged and registered."""
    logger = get_run_logger()
    torch.set_num_threads(cfg.threads)
    pool = pd.read_parquet(cfg.pool_data)
    if cfg.steps == "none":  # the update starts from train's model; its labels are the old data
        steps, trained = [pd.read_parquet(cfg.old_data)], load_classifier(cfg.base_model)
    else:  # simulated domains: step 0 is trained here
        steps, trained = domain_steps(pool, cfg.steps), None
    test = pd.read_parquet(cfg.test_data)
    dev = pd.read_parquet(cfg.dev_data)
    if cfg.update_source is not None:  # the user's new-domain rows arrive last
        update = update_splits(
            cfg.update_source,
            cfg.update_text_column,
            cfg.update_label_column,
            cfg.update_conflicts,
            cfg.update_dev_fraction,
            cfg.update_test_fraction,
            cfg.seed,
            known=pd.concat([pool, dev, test]),
            updates_dir=cfg.updates_dir,
        )
        steps.append(update["pool"])
        dev = pd.concat([dev, update["dev"]], ignore_index=True)
        test = pd.concat([test, update["test"]], ignore_index=True)

    # each step's arriving data is a file of its own: DVC versions it, MLflow records its hash
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    for stale in cfg.data_dir.glob("step_*.parquet"):
        stale.unlink()
    step_files = [cfg.data_dir / f"step_{k}.parquet" for k in range(len(steps))]
    for data, path in zip(steps, step_files, strict=True):
        data.to_parquet(path, index=False)

    staging = cfg.output_dir.with_name(cfg.output_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    run_ids: dict[tuple[str, int], str] = {}
    last = len(steps) - 1

    def on_model(method: str, step: int, clf: Classifier, stats: ClassStats | None) -> None:
        """Save, log and register every step's model (a statistics head's model with the
        statistics its next update needs); keep each method's last one on disk."""
        model_dir = staging / f"{method}_step{step}"
        save_classifier(clf, model_dir)
        if stats is not None:
            stats.save(model_dir / STATS_FILE)
        run_id = tracker.own_model_run(
            model_dir,
            run_name=f"continual-{method}-step{step}",
            tags={
                "frugal.stage": "continual",
                "frugal.continual.method": method,
                "frugal.continual.step": str(step),
                "frugal.continual.classes": ",".join(clf.labels),
                f"dvc.md5.step_{step}": data_md5(step_files[step]),
            },
        )
        tracker.register(run_id, model_dir, continual=True)
        run_ids[(method, step)] = run_id
        if step != last:
            shutil.rmtree(model_dir)

    with Bars() as bars:
        records = run_continual(
            steps, dev, test, cfg, on_model, log=logger.info, progress=bars, trained=trained
        )

    for record in records:
        metrics = {
            "average_accuracy": record.average_accuracy,
            "dev_average_accuracy": record.dev_average_accuracy,
            "update_seconds": record.seconds,
            "train_examples": record.train_examples,
            "memory_examples": record.memory_examples,
            "memory_bytes": record.memory_bytes,
        }
        metrics |= {f"test_accuracy.{k}": v for k, v in record.per_class.items()}
        metrics |= {f"forgetting.{k}": v for k, v in record.forgetting.items()}
        if record.lambdas:
            metrics["consolidation_lambda_median"] = float(np.median(record.lambdas))
        tracker.log_metrics(run_ids[(record.method, record.step)], metrics)

    table = pd.DataFrame([r.row() for r in records])
    summary = summarize_methods(table)
    if last == 0:
        shipped, reason = "initial", NO_UPDATE
    else:
        shipped, reason = choose_shipped(summary, cfg.max_time_share)
    logger.info("shipped: %s", reason)
    shutil.rmtree(cfg.output_dir, ignore_errors=True)
    (staging / f"{shipped}_step{last}").rename(cfg.output_dir)
    shutil.rmtree(staging, ignore_errors=True)
    tracker.set_alias(run_ids[(shipped, last)], CURRENT_ALIAS, continual=True)

    for path in (cfg.report, cfg.steps_report, cfg.plot):
        path.parent.mkdir(parents=True, exist_ok=True)
    table.round(6).to_csv(cfg.steps_report, index=False)
    plot_continual(table, cfg.plot, "continual domain updates (test split)")
    report = {
        "steps": [  # the domains of each step (resolved when continual.steps is auto)
            sorted(set(s["domain" if "domain" in s.columns else "label"].astype(str)))
            for s in steps
        ],
        "memory_fraction": cfg.memory_fraction,
        "step_examples": [len(s) for s in steps],
        "summary": summary,
        "ablation": ablation(summary),  # what each part adds over the method it extends
        "shipped": {"method": shipped, "rule": SHIPPED_RULE, "why": reason},
        "records": [
            r.row() | {"per_class": r.per_class, "forgetting": r.forgetting} for r in records
        ],
    }
    catalog.CONTINUAL.write_file(cfg.report, catalog.CONTINUAL.check(report))
    tracker.log_reports(cfg.report, cfg.steps_report, cfg.plot)
    return cfg.report
