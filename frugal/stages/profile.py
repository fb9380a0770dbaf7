"""The profile stage: modeled energy per utterance (every device profile and workload) and
measured CPU figures of every model as it serves: per-model tables and plots, and
reports/profile.json."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from frugal import catalog
from frugal.compress.packed import model_energy_of
from frugal.config import Params, ProfileConfig
from frugal.energy import modeled
from frugal.energy.measure import measure_in_fresh_process
from frugal.errors import DataError
from frugal.hashing import data_md5
from frugal.report.plots import plot_energy_layers
from frugal.stages import Context, Outcome, RunLog


def run(params: Params, ctx: Context) -> Outcome:
    """Modeled energy (every profile × workload) and measured CPU figures of every model."""
    cfg = params.profile
    if not cfg.workload_data.is_file():
        raise DataError(f"{cfg.workload_data}: workload data not found; run `dvc repro prepare`")
    texts = pd.read_parquet(cfg.workload_data)["text"].astype(str).tolist()[: cfg.max_requests]
    profiles = [modeled.device_profile(name, p) for name, p in cfg.profiles.items()]
    summary: dict[str, dict] = {}
    runs = []
    for model_dir in params.models():
        summary[model_dir.name], model_run = _profile(model_dir, texts, profiles, cfg, ctx)
        runs.append(model_run)
    catalog.PROFILE.write(params, summary)
    return Outcome(value=cfg.output, reports=(cfg.output,), runs=runs)


def _profile(
    model_dir: Path,
    texts: list[str],
    profiles: list[modeled.DeviceProfile],
    cfg: ProfileConfig,
    ctx: Context,
) -> tuple[dict, RunLog]:
    """One model's tables, plot and figures, and what its run records."""
    name = model_dir.name
    results = model_energy_of(model_dir, texts, profiles, tuple(cfg.workloads))
    tensors = pd.concat([r.table() for r in results], ignore_index=True)
    layers = pd.concat([r.by_layer() for r in results], ignore_index=True)
    out_dir = cfg.tables_dir / name
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors.to_csv(out_dir / "tensors.csv", index=False)
    layers.to_csv(out_dir / "layers.csv", index=False)
    plot_path = cfg.plots_dir / f"{name}.png"
    plot_energy_layers(layers, plot_path, f"{name}: modeled energy per utterance by layer")

    measured = measure_in_fresh_process(
        model_dir, cfg.workload_data, cfg.threads, cfg.latency_requests, cfg.throughput_batch
    )
    summary = modeled.energy_summary(results)
    figures = {"modeled": summary, "measured": measured.as_dict()}
    ctx.log(
        f"{name}: {summary['uj_per_utterance']} µJ/utterance (modeled); "
        f"{measured.latency_ms_p50:.1f} ms p50 at batch 1 (measured); RAPL {measured.rapl}"
    )
    metrics = {
        f"modeled_uj.{profile}.{workload}": uj
        for profile, by_workload in summary["uj_per_utterance"].items()
        for workload, uj in by_workload.items()
    }
    for key in ("latency_ms_p50", "latency_ms_p95", "throughput_per_s", "peak_rss_mb"):
        metrics[f"measured_{key}"] = float(getattr(measured, key))
    metrics["measured_weights_bytes"] = float(measured.weights_bytes)
    model_run = RunLog(
        model_dir=model_dir,
        tags={"dvc.md5.workload": data_md5(cfg.workload_data), "frugal.rapl": measured.rapl},
        metrics=metrics,
        dicts={"profile/profile.json": figures},
        artifacts=(out_dir / "tensors.csv", out_dir / "layers.csv", plot_path),
        folder="profile",
    )
    return figures, model_run
