"""The MLflow parent run's life (`orchestration.tracking.pipeline_run`) on a real store
(SQLite): the stages of one execution share it, a failing stage marks it FAILED, and only the
last stage marks it FINISHED."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from frugal.config import load_params
from orchestration.tracking import pipeline_run
from tests.conftest import ROOT


def test_stages_share_the_parent_run_which_only_the_last_finishes(tmp_path):
    # given params logging to a store of their own, and the raw data the run's key hashes
    raw = tmp_path / "raw.parquet"
    raw.write_bytes(b"raw data")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    params = load_params(ROOT / "params.yaml")
    params = params.model_copy(
        update={
            "ingest": params.ingest.model_copy(update={"output": raw}),
            "tracking": params.tracking.model_copy(update={"tracking_uri": uri}),
        }
    )
    client = MlflowClient(uri, uri)
    # when a stage runs, then one fails, then the last stage runs (each as its own process
    # would: a fresh `pipeline_run`)
    with pipeline_run(params, last=False) as first:
        pass
    assert client.get_run(first.parent_run_id).info.status == "RUNNING"
    with pytest.raises(RuntimeError), pipeline_run(params, last=False) as failing:
        raise RuntimeError("stage failed")
    assert failing.parent_run_id == first.parent_run_id
    assert client.get_run(first.parent_run_id).info.status == "FAILED"
    with pipeline_run(params, last=True) as last:
        nested = last.stage_run("continual-x", {"frugal.stage": "continual"})
    # then all three logged under one parent run, which the last stage finished
    assert last.parent_run_id == first.parent_run_id
    parent = client.get_run(first.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert client.get_run(nested).data.tags["mlflow.parentRunId"] == parent.info.run_id
    # and another execution (a Prefect pipeline run's id in the key) gets a run of its own
    with pipeline_run(params, execution_id="flow-run-2") as other:
        pass
    assert other.parent_run_id != first.parent_run_id
