"""The sample stage: simulate every compared strategy × seed (on the cached embeddings: no
torch), then buy the training labels with the chosen strategy, resuming from imported ones;
the annotation curves as CSV (for dvc plots), PNG and a summary report."""

from __future__ import annotations

from functools import partial

import pandas as pd

from frugal import catalog
from frugal.config import Params, SampleConfig
from frugal.files import write_parquet_atomic
from frugal.hashing import data_md5
from frugal.labels import sampling
from frugal.labels.annotation import read_annotations
from frugal.report.plots import plot_annotation_curves
from frugal.stages import Context, Outcome, RunLog


def simulate(cfg: SampleConfig, job: tuple[str, int], ctx: Context) -> pd.DataFrame:
    """One strategy, one seed, from the cold start to the budget, the pool's labels answering."""
    strategy, seed = job
    return sampling.curve_table(sampling.simulate(sampling.load_inputs(cfg), cfg, strategy, seed))


def run(params: Params, ctx: Context) -> Outcome:
    """Every strategy × seed on the task runner, then the labels bought; the report."""
    cfg = params.sample
    curves = []
    if cfg.annotator == "simulated":
        jobs = [(strategy, seed) for strategy in cfg.compare for seed in cfg.seeds]
        curves = ctx.map("simulate-strategy", partial(simulate, cfg), jobs)
    inputs = sampling.load_inputs(cfg)
    labeled, bought = sampling.buy_labels(inputs, read_annotations(cfg.annotations), cfg)
    write_parquet_atomic(labeled, cfg.output)
    full = None
    if cfg.annotator == "simulated":
        full = sampling.full_pool_accuracy(inputs, cfg.inverse_l2)
    rounds = pd.concat(curves or [sampling.curve_table(bought)], ignore_index=True)
    summary = _summary(cfg, labeled, rounds, sampling.curve_table(bought), full)
    for path in (cfg.curve, cfg.rounds, cfg.summary):
        path.parent.mkdir(parents=True, exist_ok=True)
    sampling.mean_curves(rounds).round(6).to_csv(cfg.curve, index=False)
    rounds.round(6).to_csv(cfg.rounds, index=False)
    catalog.SAMPLE.write(params, summary)
    plot_annotation_curves(
        rounds, cfg.plot, f"annotation curves ({len(set(rounds['seed']))} seeds)"
    )
    return Outcome(value=summary, runs=[_run_log(cfg, labeled, rounds, summary)])


def _summary(
    cfg: SampleConfig,
    labeled: pd.DataFrame,
    rounds: pd.DataFrame,
    bought: pd.DataFrame,
    full: float | None,
) -> dict:
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
    return summary


def _run_log(
    cfg: SampleConfig, labeled: pd.DataFrame, rounds: pd.DataFrame, summary: dict
) -> RunLog:
    means = rounds.groupby(["strategy", "n_labels"])["accuracy"].mean()
    metrics = {"labels": float(len(labeled)), "proxy_accuracy": summary["proxy_accuracy"]}
    for strategy, entry in summary["strategies"].items():
        if entry["labels_vs_random"] is not None:
            metrics[f"labels_vs_random.{strategy}"] = entry["labels_vs_random"]
    return RunLog(
        run_name="sample",
        tags={"frugal.stage": "sample", "dvc.md5.labeled": data_md5(cfg.output)},
        steps=[
            (int(n_labels), {f"proxy_accuracy.{strategy}": accuracy})
            for (strategy, n_labels), accuracy in means.items()
        ],
        metrics=metrics,
        artifacts=(cfg.curve, cfg.rounds, cfg.summary, cfg.plot),
        folder="sample",
    )
