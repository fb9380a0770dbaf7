from pathlib import Path

from prefect import flow

from flows.common import run_stage
from frugal.config import Params
from tasks.data import ingest_task


@flow(name="ingest")
def ingest_flow(params: Params) -> Path:
    """Read and validate the source data set into data/raw.parquet."""
    return ingest_task(params.ingest)


if __name__ == "__main__":
    run_stage(ingest_flow)
