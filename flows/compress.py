from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows.common import run_stage
from frugal.config import load_params
from tasks.compress import compress_task
from tasks.tracking_tasks import open_pipeline_run


@flow(name="compress")
def compress_flow(
    params_path: str = "params.yaml",
    overrides: dict | None = None,
    parent_run_id: str | None = None,
) -> list[Path]:
    """Sensitivity per tensor, energy-guided bit plans, quantization-aware distillation; save,
    log and register every compressed variant."""
    params = load_params(params_path, overrides)
    parent_run_id = parent_run_id or open_pipeline_run(params)
    return compress_task(params, parent_run_id)


if __name__ == "__main__":
    run_stage(compress_flow)
