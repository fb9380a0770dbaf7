"""Tasks of the ingest and prepare stages."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import task

from frugal import data
from frugal.config import IngestConfig, PrepareConfig
from frugal.files import write_parquet_atomic, write_splits_atomic


@task(name="ingest")
def ingest_task(cfg: IngestConfig) -> Path:
    """Read and validate the source, write data/raw.parquet atomically."""
    raw = data.ingest(cfg)
    write_parquet_atomic(raw, cfg.output)
    return cfg.output


@task(name="prepare")
def prepare_task(raw_path: Path, cfg: PrepareConfig) -> dict[str, Path]:
    """Stratified, seeded pool/dev/test (and selection) split of the raw data."""
    raw = pd.read_parquet(raw_path)
    splits = data.split(raw, cfg.dev_fraction, cfg.test_fraction, cfg.seed, cfg.selection_share)
    return write_splits_atomic(splits, cfg.output_dir)
