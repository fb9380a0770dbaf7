"""The ingest stage: read and validate the source, write data/raw.parquet atomically."""

from __future__ import annotations

from frugal.config import Params
from frugal.data import dataset
from frugal.files import write_parquet_atomic
from frugal.stages import Context, Outcome


def run(params: Params, ctx: Context) -> Outcome:
    """Read and validate the source; write the raw table."""
    cfg = params.ingest
    return Outcome(value=write_parquet_atomic(dataset.ingest(cfg), cfg.output))
