from pathlib import Path

from prefect import flow

from flows.common import run_stage
from frugal.config import Params
from tasks.data import prepare_task


@flow(name="prepare")
def prepare_flow(params: Params) -> dict[str, Path]:
    """Split data/raw.parquet into stratified pool / dev / test."""
    return prepare_task(params.ingest.output, params.prepare)


if __name__ == "__main__":
    run_stage(prepare_flow)
