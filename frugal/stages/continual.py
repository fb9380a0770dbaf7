"""The continual stage: new domains arrive, a model is updated with every method in
continual.methods, and each step's model is recorded and registered. The method chosen on dev
(`frugal.continual.methods.choose_shipped`) ships: its last-step model is continual.output_dir and the
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

from frugal import catalog, registry
from frugal.config import ContinualConfig, Params
from frugal.continual.methods import (
    SHIPPED_RULE,
    STATS_FILE,
    ClassStats,
    StepRecord,
    ablation,
    choose_shipped,
    run_continual,
    summarize_methods,
)
from frugal.data.domains import domain_steps, update_splits
from frugal.hashing import data_md5
from frugal.model.export import save_classifier
from frugal.model.modeling import Classifier, load_classifier
from frugal.report.plots import plot_continual
from frugal.stages import Context, Outcome, RunLog

NO_UPDATE = (
    "no update arrived (continual.update_source is null): train's model stays current; set "
    "continual.update_source to a file of new-domain rows in continual.updates_dir"
)


def arriving(cfg: ContinualConfig) -> tuple[list[pd.DataFrame], pd.DataFrame, pd.DataFrame]:
    """The data of each step (step 0: the old data), and the dev and test splits with the
    update's own shares added."""
    pool = pd.read_parquet(cfg.pool_data)
    if cfg.steps == "none":  # the update starts from train's model; its labels are the old data
        steps = [pd.read_parquet(cfg.old_data)]
    else:  # simulated domains: step 0 is trained here
        steps = domain_steps(pool, cfg.steps)
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
    return steps, dev, test


def _write_steps(steps: list[pd.DataFrame], data_dir: Path) -> list[Path]:
    """Each step's arriving data as a file of its own: DVC versions it, MLflow records its hash."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for stale in data_dir.glob("step_*.parquet"):
        stale.unlink()
    files = [data_dir / f"step_{k}.parquet" for k in range(len(steps))]
    for data, path in zip(steps, files, strict=True):
        data.to_parquet(path, index=False)
    return files


def run(params: Params, ctx: Context) -> Outcome:
    """Every method through every domain step; the dev rule's method ships."""
    cfg = params.continual
    torch.set_num_threads(cfg.threads)
    steps, dev, test = arriving(cfg)
    trained = load_classifier(cfg.base_model) if cfg.steps == "none" else None
    step_files = _write_steps(steps, cfg.data_dir)
    staging = cfg.output_dir.with_name(cfg.output_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    tags: dict[tuple[str, int], dict[str, str]] = {}

    def on_model(method: str, step: int, clf: Classifier, stats: ClassStats | None) -> None:
        """Save every step's model (a statistics head's with the statistics its next update
        needs) to the staging folder, recorded and registered once the stage returns."""
        model_dir = staging / f"{method}_step{step}"
        save_classifier(clf, model_dir)
        if stats is not None:
            stats.save(model_dir / STATS_FILE)
        tags[(method, step)] = {
            "frugal.stage": "continual",
            "frugal.continual.method": method,
            "frugal.continual.step": str(step),
            "frugal.continual.classes": ",".join(clf.labels),
            f"dvc.md5.step_{step}": data_md5(step_files[step]),
        }

    records = run_continual(
        steps, dev, test, cfg, on_model, log=ctx.log, progress=ctx.progress, trained=trained
    )
    table = pd.DataFrame([r.row() for r in records])
    summary = summarize_methods(table)
    last = len(steps) - 1
    shipped, reason = (
        ("initial", NO_UPDATE) if last == 0 else choose_shipped(summary, cfg.max_time_share)
    )
    ctx.log(f"shipped: {reason}")
    shutil.rmtree(cfg.output_dir, ignore_errors=True)
    shutil.copytree(staging / f"{shipped}_step{last}", cfg.output_dir)
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
    catalog.CONTINUAL.write(params, report)
    by_model = {(r.method, r.step): r for r in records}
    runs = [  # in the order the models were made: the versions' order
        _run_log(staging, key, model_tags, by_model.get(key), key == (shipped, last))
        for key, model_tags in tags.items()
    ]
    return Outcome(
        value=cfg.report,
        reports=(cfg.report, cfg.steps_report, cfg.plot),
        runs=runs,
        scratch=(staging,),
    )


def _run_log(
    staging: Path,
    key: tuple[str, int],
    tags: dict[str, str],
    record: StepRecord | None,
    ships: bool,
) -> RunLog:
    """A step's model: its own run, registered, with its figures (a model scored in no record
    has none); the shipped one gets the `current` alias."""
    method, step = key
    return RunLog(
        run_name=f"continual-{method}-step{step}",
        model_dir=staging / f"{method}_step{step}",
        tags=tags,
        metrics={} if record is None else _figures(record),
        register=True,
        continual=True,
        alias=registry.CURRENT_ALIAS if ships else None,
    )


def _figures(record: StepRecord) -> dict[str, float]:
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
    return metrics
