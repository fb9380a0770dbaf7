"""Task of the profile stage: modeled energy per utterance (every device profile and workload)
and measured CPU figures of every model, as tables, a plot, reports/profile.json and MLflow."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task

from frugal import catalog, energy
from frugal.compressed import model_energy_of
from frugal.config import EnergyConfig
from frugal.errors import DataError
from frugal.hashing import data_md5
from frugal.measure import measure_in_fresh_process
from frugal.plots import plot_energy_layers
from orchestration.tracking import Tracker


@task(name="profile")
def profile_task(model_dirs: list[Path], cfg: EnergyConfig, tracker: Tracker) -> Path:
    """Modeled energy (every profile × workload) and measured CPU figures of every model."""
    if not cfg.workload_data.is_file():
        raise DataError(f"{cfg.workload_data}: workload data not found; run `dvc repro prepare`")
    texts = pd.read_parquet(cfg.workload_data)["text"].astype(str).tolist()[: cfg.max_requests]
    profiles = [energy.device_profile(name, p) for name, p in cfg.profiles.items()]
    logger = get_run_logger()
    summary: dict[str, dict] = {}
    for model_dir in model_dirs:
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
        modeled = energy.energy_summary(results)
        summary[name] = {"modeled": modeled, "measured": measured.as_dict()}
        logger.info(
            "%s: %s µJ/utterance (modeled); %.1f ms p50 at batch 1 (measured); RAPL %s",
            name,
            modeled["uj_per_utterance"],
            measured.latency_ms_p50,
            measured.rapl,
        )

        run_id = tracker.model_run(model_dir, "profile")
        tracker.set_tags(
            run_id, {"dvc.md5.workload": data_md5(cfg.workload_data), "frugal.rapl": measured.rapl}
        )
        metrics = {
            f"modeled_uj.{profile}.{workload}": uj
            for profile, by_workload in modeled["uj_per_utterance"].items()
            for workload, uj in by_workload.items()
        }
        for key in ("latency_ms_p50", "latency_ms_p95", "throughput_per_s", "peak_rss_mb"):
            metrics[f"measured_{key}"] = float(getattr(measured, key))
        metrics["measured_weights_bytes"] = float(measured.weights_bytes)
        tracker.log_metrics(run_id, metrics)
        tracker.log_dict(run_id, summary[name], "profile/profile.json")
        tables = (out_dir / "tensors.csv", out_dir / "layers.csv", plot_path)
        tracker.log_artifacts(run_id, tables, "profile")

    cfg.output.parent.mkdir(parents=True, exist_ok=True)
    catalog.PROFILE.write_file(cfg.output, catalog.PROFILE.check(summary))
    tracker.log_reports(cfg.output)
    return cfg.output
