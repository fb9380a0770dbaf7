"""The `frugal-pipeline` flow's `until` parameter (stop after a stage, as `dvc repro <stage>`)."""

from __future__ import annotations

import pytest
import yaml

from flows.pipeline import STAGES, frugal_pipeline
from frugal.errors import ParamsError
from tests.conftest import ROOT


def test_until_names_a_dvc_stage():
    stages = list(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])
    assert list(STAGES) == stages


def test_unknown_until_is_refused_before_any_stage_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing here to run on: a stage would fail differently
    with pytest.raises(
        ParamsError, match="until: unknown stage 'trian'; choose one of source, ingest"
    ):
        frugal_pipeline.fn(until="trian")
