"""Fixtures both suites share: the repository's root and tiny real samples of the default data.
Unit-only fixtures (a tiny random BERT in place of the pretrained encoder) live in
tests/unit/conftest.py; end-to-end ones (a throw-away repository that ran the whole pipeline)
in tests/e2e/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from orchestration.env import configure_environment

configure_environment()

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def trec() -> pd.DataFrame:
    from frugal.data.dataset import load_trec

    return load_trec("coarse")


@pytest.fixture(scope="session")
def trec_sample(trec: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Small stratified train/dev/test samples of the real TREC questions."""
    from frugal.data.dataset import split

    small = trec.groupby("label", group_keys=False).sample(n=40, random_state=0)
    return split(small, dev_fraction=0.2, test_fraction=0.25, seed=0)
