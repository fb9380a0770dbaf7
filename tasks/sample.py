"""Tasks of the sample stage: simulate strategies, buy labels (on the cached embeddings: no torch)."""

from __future__ import annotations

import pandas as pd
from prefect import task

from frugal import catalog, sampling
from frugal.annotation import read_annotations
from frugal.config import SampleConfig
from frugal.files import write_parquet_atomic
from frugal.hashing import data_md5
from frugal.plots import plot_annotation_curves
from orchestration.tracking import Tracker


@task(name="simulate-strategy")
def simulate_task(cfg: SampleConfig, strategy: str, seed: int) -> pd.DataFrame:
    """One strategy, one seed, from the cold start to the budget, the pool's labels answering."""
    return sampling.curve_table(sampling.simulate(sampling.load_inputs(cfg), cfg, strategy, seed))


@task(name="buy-labels")
def buy_labels_task(cfg: SampleConfig) -> tuple[pd.DataFrame, float | None]:
    """The labeled set for training (resuming from imported labels), written atomically.
    Returns the bought run's curve and, in simulation, the full-pool proxy accuracy."""
    inputs = sampling.load_inputs(cfg)
    labeled, run = sampling.buy_labels(inputs, read_annotations(cfg.annotations), cfg)
    write_parquet_atomic(labeled, cfg.output)
    full = None
    if cfg.annotator == "simulated":
        full = sampling.full_pool_accuracy(inputs, cfg.inverse_l2)
    return sampling.curve_table(run), full


@task(name="sample-report")
def sample_report_task(
    cfg: SampleConfig,
    curves: list[pd.DataFrame],
    bought: pd.DataFrame,
    full: float | None,
    tracker: Tracker,
) -> dict:
    """Annotation curves (CSV for dvc plots, PNG), summary JSON; all logged to MLflow."""
    rounds = pd.concat(curves or [bought], ignore_index=True)
    labeled = pd.read_parquet(cfg.output)
    summary = {
        "annotator": cfg.annotator,
        "strategy": cfg.strategy,
        "labels": len(labeled),
        "labels_by_source": labeled["source"].value_counts().to_dict(),
        "classes_missing": sorted(
            set(pd.read_parquet(cfg.eval_data)["label"].astype(str)) - set(labeled["label"])
        ),
        "proxy_accuracy": float(bought["accuracy"].iloc[-1]),
        "full_pool_proxy_accuracy": full,
        "strategies": sampling.summarize_curves(rounds, full) if full is not None else {},
    }
    # The strategy to configure is the one that did best on dev (eval_data) at this budget.
    summary["best_on_dev"] = (
        max(summary["strategies"], key=lambda s: summary["strategies"][s]["final_accuracy_mean"])
        if summary["strategies"]
        else None
    )
    for path in (cfg.curve, cfg.rounds, cfg.summary):
        path.parent.mkdir(parents=True, exist_ok=True)
    sampling.mean_curves(rounds).round(6).to_csv(cfg.curve, index=False)
    rounds.round(6).to_csv(cfg.rounds, index=False)
    catalog.SAMPLE.write_file(cfg.summary, catalog.SAMPLE.check(summary))
    plot_annotation_curves(
        rounds, cfg.plot, f"annotation curves ({len(set(rounds['seed']))} seeds)"
    )

    run_id = tracker.stage_run(
        run_name="sample",
        tags={"frugal.stage": "sample", "dvc.md5.labeled": data_md5(cfg.output)},
    )
    means = rounds.groupby(["strategy", "n_labels"])["accuracy"].mean()
    for (strategy, n_labels), accuracy in means.items():
        tracker.log_metrics(run_id, {f"proxy_accuracy.{strategy}": accuracy}, int(n_labels))
    metrics = {"labels": float(len(labeled)), "proxy_accuracy": summary["proxy_accuracy"]}
    for strategy, entry in summary["strategies"].items():
        if entry["labels_vs_random"] is not None:
            metrics[f"labels_vs_random.{strategy}"] = entry["labels_vs_random"]
    tracker.log_metrics(run_id, metrics)
    tracker.log_artifacts(run_id, (cfg.curve, cfg.rounds, cfg.summary, cfg.plot), "sample")
    return summary
