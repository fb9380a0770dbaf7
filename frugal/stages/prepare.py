"""The prepare stage: the stratified, seeded pool/dev/test (and selection) split."""

from __future__ import annotations

import pandas as pd

from frugal.config import Params
from frugal.data import dataset
from frugal.files import write_splits_atomic
from frugal.stages import Context, Outcome


def run(params: Params, ctx: Context) -> Outcome:
    """Split the raw table; write every split atomically."""
    cfg = params.prepare
    raw = pd.read_parquet(params.ingest.output)
    splits = dataset.split(raw, cfg.dev_fraction, cfg.test_fraction, cfg.seed, cfg.selection_share)
    return Outcome(value=write_splits_atomic(splits, cfg.output_dir))
