"""The compress stage: sensitivity per tensor, then the candidate plans of the budget sweep and
the compressed variants (quantization-aware distillation included), both fanned out over the
task runner; each variant saved packed to a staging folder, swapped into compress.output_dir
once all are built (a failure before keeps the previous set), then recorded and registered
with its plan."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd
import torch

from frugal import catalog
from frugal.compress.packed import save_compressed
from frugal.compress.planner import Analysis, Candidate, analyse, candidate_table, plan_candidate
from frugal.compress.sensitivity import least_sensitive_heads
from frugal.compress.variants import build_variant
from frugal.config import CompressConfig, Params
from frugal.energy import modeled
from frugal.energy.latency import usable_table
from frugal.hashing import data_md5, file_md5
from frugal.model.modeling import Classifier, load_classifier
from frugal.stages import Context, Outcome, RunLog


@dataclass(frozen=True)
class Inputs:
    """What every part reads: its own copy of the base model (parts may run at once in threads,
    and scoring a plan quantizes the model's weights in place for a moment)."""

    base: Classifier
    unlabeled: list[str]  # the pool's text: Fisher and distillation
    bought: dict[str, str]  # text -> label of the bought labels: cross-entropy in distillation
    dev_texts: list[str]
    dev_labels: list[str]
    workload_texts: list[str]  # pool texts whose invocation counts the planner prices
    profile: modeled.DeviceProfile


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
        modeled.device_profile(cfg.profile, params.profile.profiles[cfg.profile]),
    )


def _staging(cfg: CompressConfig) -> Path:
    return cfg.output_dir.with_name(cfg.output_dir.name + ".partial")


def candidate(params: Params, analysis: Analysis, budget: float, ctx: Context) -> Candidate | None:
    """The least-energy plan within one predicted-loss budget, scored on dev (None: no plan
    meets it within the latency budget)."""
    x = _inputs(params)
    found = plan_candidate(
        x.base, analysis, budget, x.dev_texts, x.dev_labels, x.profile, params.compress
    )
    if found is None:
        ctx.log(f"budget {budget:.4g}: no plan within the latency budget")
        return None
    energies = {k: round(v, 4) for k, v in found.record.items() if k.startswith("relative_energy")}
    ctx.log(f"budget {budget:.4g}: dev drop {found.record['dev_drop']:+.4f}, energy {energies}")
    return found


@dataclass(frozen=True)
class Saved:
    """A variant saved under the staging folder: what its run records with it."""

    name: str
    bits: dict[str, int]
    plan: dict


def variant(
    params: Params, analysis: Analysis, candidates: list[Candidate], name: str, ctx: Context
) -> Saved:
    """Build one variant and save it packed under the staging folder."""
    x = _inputs(params)
    built = build_variant(
        name, x.base, analysis, candidates, x.unlabeled, x.dev_texts, x.dev_labels,
        x.workload_texts, x.profile, params.compress, log=ctx.log, progress=ctx.progress,
        bought=x.bought,
    )  # fmt: skip
    out = _staging(params.compress) / name
    save_compressed(
        built.classifier, built.bits, out, built.plan, built.execution, params.compress.block_size
    )
    return Saved(name, built.bits, built.plan)


def run(params: Params, ctx: Context) -> Outcome:
    """Sensitivity, candidate plans and variants; swap them in, write the reports."""
    cfg = params.compress
    shutil.rmtree(_staging(cfg), ignore_errors=True)  # this run's variants only
    analysis = _analyse(params, ctx)
    planned = ctx.map("candidate-plan", partial(candidate, params, analysis), analysis.budgets)
    candidates = [c for c in planned if c is not None]  # None: no plan meets the budgets
    saved = ctx.map(
        "compress-variant", partial(variant, params, analysis, candidates), cfg.variants
    )
    _swap_in(cfg)
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
    catalog.COMPRESS.write(params, summary)
    base_md5 = file_md5(params.train.output_dir / "model.safetensors")
    unlabeled_md5 = data_md5(cfg.unlabeled_data)
    runs = [_run_log(cfg, v, base_md5, unlabeled_md5) for v in saved]
    return Outcome(
        value=[cfg.output_dir / v.name for v in saved],
        reports=(cfg.report, cfg.sensitivity_report),
        runs=runs,
    )


def _analyse(params: Params, ctx: Context) -> Analysis:
    x, cfg = _inputs(params), params.compress
    table, warning = usable_table(cfg.latency_table, cfg.threads, cfg.block_size)
    if warning and cfg.latency_budget is not None:
        ctx.warn(warning + ("" if table else "; planning without a latency budget"))
    return analyse(
        x.base, x.unlabeled, x.dev_texts, x.dev_labels, x.workload_texts, cfg,
        log=ctx.log, progress=ctx.progress, latency_table=table,
    )  # fmt: skip


def _swap_in(cfg: CompressConfig) -> None:
    previous = cfg.output_dir.with_name(cfg.output_dir.name + ".previous")
    shutil.rmtree(previous, ignore_errors=True)
    if cfg.output_dir.exists():
        cfg.output_dir.rename(previous)
    _staging(cfg).rename(cfg.output_dir)
    shutil.rmtree(previous, ignore_errors=True)


def _run_log(cfg: CompressConfig, saved: Saved, base_md5: str, unlabeled_md5: str) -> RunLog:
    # the ort_int8 anchor has no plan: its widths are ONNX Runtime's, priced by `profile`
    metrics = {
        f"planned_relative_energy.{workload}": value
        for workload, value in saved.plan.get("relative_energy", {}).items()
    }
    for key, metric in (("mean_bits", "planned_mean_bits"), ("predicted_loss", "predicted_loss")):
        if key in saved.plan:
            metrics[metric] = saved.plan[key]
    return RunLog(
        run_name=saved.name,
        model_dir=cfg.output_dir / saved.name,
        tags={
            "frugal.stage": "compress",
            "frugal.variant": saved.name,
            "frugal.base_model_md5": base_md5,
            "dvc.md5.unlabeled": unlabeled_md5,
        },
        metrics=metrics,
        dicts={"compression/plan.json": saved.plan | {"bits": saved.bits}},
        register=True,
    )
