"""Tasks of the compress stage: sensitivity, the candidate plans of the budget sweep, each
compressed variant (saved packed to a staging folder), then the swap into compress.output_dir
and the MLflow runs, each variant logged and registered with its plan. Candidate plans and
variants are independent: the flow maps them over the task runner."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from prefect import get_run_logger, task

from frugal import catalog, energy
from frugal.compress.planner import (
    Analysis,
    Candidate,
    analyse,
    candidate_table,
    plan_candidate,
)
from frugal.compress.sensitivity import least_sensitive_heads
from frugal.compress.variants import build_variant
from frugal.compressed import save_compressed
from frugal.config import CompressConfig, Params
from frugal.hashing import data_md5, file_md5
from frugal.latency import usable_table
from frugal.modeling import Classifier, load_classifier
from orchestration.progress import Bars
from orchestration.tracking import Tracker


@dataclass(frozen=True)
class Inputs:
    """What every compress task reads: its own copy of the base model (tasks may run at once
    in threads, and scoring a plan quantizes the model's weights in place for a moment)."""

    base: Classifier
    unlabeled: list[str]  # the pool's text: Fisher and distillation
    bought: dict[str, str]  # text -> label of the bought labels: cross-entropy in distillation
    dev_texts: list[str]
    dev_labels: list[str]
    workload_texts: list[str]  # pool texts whose invocation counts the planner prices
    profile: energy.DeviceProfile


def _inputs(params: Params) -> Inputs:
    cfg = params.compress
    torch.set_num_threads(cfg.threads)
    dev = pd.read_parquet(cfg.dev_data)
    unlabeled = pd.read_parquet(cfg.unlabeled_data, columns=["text"])["text"].astype(str).tolist()
    bought = pd.read_parquet(cfg.labeled_data, columns=["text", "label"])
    return Inputs(
        load_classifier(params.train.output_dir),
        unlabeled,
        dict(zip(bought["text"].astype(str), bought["label"].astype(str), strict=True)),
        dev["text"].astype(str).tolist(),
        dev["label"].astype(str).tolist(),
        unlabeled[: cfg.workload_texts],
        energy.device_profile(cfg.profile, params.energy.profiles[cfg.profile]),
    )


def _staging(cfg: CompressConfig) -> Path:
    return cfg.output_dir.with_name(cfg.output_dir.name + ".partial")


@task(name="sensitivity")
def sensitivity_task(params: Params) -> Analysis:
    """Fisher and measured sensitivity of every plannable tensor; starts a fresh staging
    folder for this run's variants."""
    shutil.rmtree(_staging(params.compress), ignore_errors=True)
    x = _inputs(params)
    cfg, log = params.compress, get_run_logger()
    table, warning = usable_table(cfg.latency_table, cfg.threads, cfg.block_size)
    if warning and cfg.latency_budget is not None:
        log.warning("%s%s", warning, "" if table else "; planning without a latency budget")
    with Bars() as bars:
        return analyse(
            x.base, x.unlabeled, x.dev_texts, x.dev_labels, x.workload_texts, cfg,
            log=log.info, progress=bars, latency_table=table,
        )  # fmt: skip


@task(name="candidate-plan")
def candidate_task(params: Params, analysis: Analysis, budget: float) -> Candidate | None:
    """The least-energy plan within one predicted-loss budget, scored on dev (None: no plan
    meets it within the latency budget)."""
    x = _inputs(params)
    candidate = plan_candidate(
        x.base, analysis, budget, x.dev_texts, x.dev_labels, x.profile, params.compress
    )
    if candidate is None:
        get_run_logger().info("budget %.4g: no plan within the latency budget", budget)
        return None
    get_run_logger().info(
        "budget %.4g: dev drop %+.4f, energy %s",
        budget,
        candidate.record["dev_drop"],
        {k: round(v, 4) for k, v in candidate.record.items() if k.startswith("relative_energy")},
    )
    return candidate


@dataclass(frozen=True)
class Saved:
    """A variant saved under the staging folder: what publishing logs with it."""

    name: str
    bits: dict[str, int]
    plan: dict


@task(name="compress-variant")
def variant_task(
    params: Params, analysis: Analysis, candidates: list[Candidate], name: str
) -> Saved:
    """Build one variant and save it packed under the staging folder."""
    x = _inputs(params)
    with Bars() as bars:
        variant = build_variant(
            name, x.base, analysis, candidates, x.unlabeled, x.dev_texts, x.dev_labels,
            x.workload_texts, x.profile, params.compress, log=get_run_logger().info,
            progress=bars, bought=x.bought,
        )  # fmt: skip
    save_compressed(
        variant.classifier,
        variant.bits,
        _staging(params.compress) / name,
        variant.plan,
        variant.execution,
        params.compress.block_size,
    )
    return Saved(name, variant.bits, variant.plan)


@task(name="publish-compressed")
def publish_task(
    params: Params,
    analysis: Analysis,
    candidates: list[Candidate],
    saved: list[Saved],
    tracker: Tracker,
) -> list[Path]:
    """Swap the staged variants in (a failure before this keeps the previous set), write the
    reports, then log and register every variant in MLflow."""
    cfg = params.compress
    staging = _staging(cfg)
    previous = cfg.output_dir.with_name(cfg.output_dir.name + ".previous")
    shutil.rmtree(previous, ignore_errors=True)
    if cfg.output_dir.exists():
        cfg.output_dir.rename(previous)
    staging.rename(cfg.output_dir)
    shutil.rmtree(previous, ignore_errors=True)

    for path in (cfg.report, cfg.sensitivity_report, cfg.subgroup_report, cfg.candidates_report):
        path.parent.mkdir(parents=True, exist_ok=True)
    analysis.sensitivity.round(8).to_csv(cfg.sensitivity_report, index=False)
    analysis.subgroups.to_csv(cfg.subgroup_report, index=False, float_format="%.6g")
    candidate_table(candidates).round(6).to_csv(cfg.candidates_report, index=False)
    summary = {
        "reference_dev_accuracy": analysis.reference_dev_accuracy,
        "sensitivity_agreement": analysis.agreement,
        "least_sensitive_heads": least_sensitive_heads(analysis.subgroups),
        "variants": {
            v.name: {k: val for k, val in v.plan.items() if k != "resident"} for v in saved
        },
    }
    catalog.COMPRESS.write_file(cfg.report, catalog.COMPRESS.check(summary))

    tracker.log_reports(cfg.report, cfg.sensitivity_report)
    base_md5 = file_md5(params.train.output_dir / "model.safetensors")
    out = []
    for variant in saved:
        model_dir = cfg.output_dir / variant.name
        run_id = tracker.own_model_run(
            model_dir,
            run_name=variant.name,
            tags={
                "frugal.stage": "compress",
                "frugal.variant": variant.name,
                "frugal.base_model_md5": base_md5,
                "dvc.md5.unlabeled": data_md5(cfg.unlabeled_data),
            },
        )
        # the ort_int8 anchor has no plan: its widths are ONNX Runtime's, priced by `profile`
        metrics = {
            f"planned_relative_energy.{workload}": value
            for workload, value in variant.plan.get("relative_energy", {}).items()
        }
        for key, metric in (
            ("mean_bits", "planned_mean_bits"),
            ("predicted_loss", "predicted_loss"),
        ):
            if key in variant.plan:
                metrics[metric] = variant.plan[key]
        tracker.log_metrics(run_id, metrics)
        tracker.log_dict(run_id, variant.plan | {"bits": variant.bits}, "compression/plan.json")
        tracker.register(run_id, model_dir)
        out.append(model_dir)
    return out
