"""Task of the compress stage: sensitivity, energy-guided plans and the compressed variants,
saved packed under compress.output_dir, each logged and registered in MLflow with its plan."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import torch
from prefect import get_run_logger, task

from frugal import energy
from frugal.compressed import save_compressed
from frugal.compression import compress
from frugal.config import Params
from frugal.hashing import data_md5, file_md5
from frugal.modeling import load_classifier
from tasks import tracking
from tasks.progress import Bars


@task(name="compress")
def compress_task(params: Params, parent_run_id: str) -> list[Path]:
    cfg = params.compress
    logger = get_run_logger()
    torch.set_num_threads(cfg.threads)
    base = load_classifier(params.train.output_dir)
    # the pool's text only: distillation and Fisher use no labels
    unlabeled = pd.read_parquet(cfg.unlabeled_data, columns=["text"])["text"].astype(str).tolist()
    dev = pd.read_parquet(cfg.dev_data)
    profile = energy.device_profile(cfg.profile, params.energy.profiles[cfg.profile])
    with Bars() as bars:
        result = compress(
            base,
            unlabeled,
            dev["text"].astype(str).tolist(),
            dev["label"].astype(str).tolist(),
            unlabeled[: cfg.workload_texts],
            profile,
            cfg,
            cfg.variants,
            log=logger.info,
            progress=bars,
        )

    # every variant is written to a staging folder first: a failure keeps the previous set
    staging = cfg.output_dir.with_name(cfg.output_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    for variant in result.variants:
        save_compressed(
            variant.classifier,
            variant.bits,
            staging / variant.name,
            variant.plan,
            variant.execution,
            variant.sparse,
        )
    previous = cfg.output_dir.with_name(cfg.output_dir.name + ".previous")
    shutil.rmtree(previous, ignore_errors=True)
    if cfg.output_dir.exists():
        cfg.output_dir.rename(previous)
    staging.rename(cfg.output_dir)
    shutil.rmtree(previous, ignore_errors=True)

    for path in (cfg.report, cfg.sensitivity_report, cfg.subgroup_report, cfg.candidates_report):
        path.parent.mkdir(parents=True, exist_ok=True)
    result.sensitivity.round(8).to_csv(cfg.sensitivity_report, index=False)
    result.subgroups.to_csv(cfg.subgroup_report, index=False, float_format="%.6g")
    result.candidates.round(6).to_csv(cfg.candidates_report, index=False)
    summary = {
        "reference_dev_accuracy": result.reference_dev_accuracy,
        "sensitivity_agreement": result.agreement,
        "least_sensitive_heads": _least_sensitive_heads(result.subgroups),
        "variants": {
            v.name: {k: val for k, val in v.plan.items() if k != "resident"}
            for v in result.variants
        },
    }
    cfg.report.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")

    c = tracking.client(params.tracking)
    c.log_artifact(parent_run_id, str(cfg.report), "reports")
    c.log_artifact(parent_run_id, str(cfg.sensitivity_report), "reports")
    base_md5 = file_md5(params.train.output_dir / "model.safetensors")
    out = []
    for variant in result.variants:
        model_dir = cfg.output_dir / variant.name
        run_id = tracking.nested_run(
            params,
            parent_run_id,
            run_name=variant.name,
            tags={
                "frugal.stage": "compress",
                tracking.MODEL_DIR_TAG: str(model_dir),
                "frugal.variant": variant.name,
                "frugal.base_model_md5": base_md5,
                tracking.MODEL_HASH_TAG: file_md5(model_dir / "model.safetensors"),
                "dvc.md5.unlabeled": data_md5(cfg.unlabeled_data),
            },
        )
        for workload, value in variant.plan["relative_energy"].items():
            c.log_metric(run_id, f"planned_relative_energy.{workload}", value)
        c.log_metric(run_id, "planned_mean_bits", variant.plan["mean_bits"])
        c.log_metric(run_id, "predicted_loss", variant.plan["predicted_loss"])
        c.log_dict(run_id, variant.plan | {"bits": variant.bits}, "compression/plan.json")
        tracking.log_and_register_model(params.tracking, run_id, model_dir)
        out.append(model_dir)
    return out


def _least_sensitive_heads(subgroups: pd.DataFrame, top: int = 5) -> list[dict]:
    """Heads whose removal the Fisher predicts to cost least (candidates for head pruning):
    the narrowest width's prediction summed over a head's query, key, value and output."""
    heads = subgroups[
        (subgroups["kind"] == "head") & (subgroups["bits"] == subgroups["bits"].min())
    ]
    if heads.empty:
        return []
    layer = heads["tensor"].str.extract(r"layer\.(\d+)\.")[0].astype(int)
    per_head = heads.assign(layer=layer).groupby(["layer", "group"])["fisher_loss"].sum()
    return [
        {"layer": int(lay), "head": int(head), "fisher_loss": float(value)}
        for (lay, head), value in per_head.nsmallest(top).items()
    ]
