from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows.common import run_stage
from frugal.config import load_params
from tasks.data import ingest_task


@flow(name="ingest")
def ingest_flow(params_path: str = "params.yaml", overrides: dict | None = None) -> Path:
    """Read and validate the source data set into data/raw.parquet."""
    params = load_params(params_path, overrides)
    return ingest_task(params.ingest)


if __name__ == "__main__":
    run_stage(ingest_flow)
