"""The task-runner switch (`orchestration` in params.yaml): threads by default, Dask as a config
change. The sample stage's strategies × seeds on a local Dask cluster of 2 worker processes give
exactly the curves the default thread pool gave."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
import yaml
from prefect.task_runners import ThreadPoolTaskRunner
from prefect_dask import DaskTaskRunner

from frugal.config import OrchestrationConfig
from tasks.runner import task_runner
from tests.conftest import project_env


def test_threads_by_default_and_dask_binds_loopback():
    threads = task_runner(OrchestrationConfig(task_runner="threads", workers=3))
    assert isinstance(threads, ThreadPoolTaskRunner) and threads._max_workers == 3
    dask = task_runner(OrchestrationConfig(task_runner="dask", workers=2))
    assert isinstance(dask, DaskTaskRunner)
    assert dask.cluster_kwargs["n_workers"] == 2 and dask.cluster_kwargs["host"] == "127.0.0.1"
    remote = task_runner(
        OrchestrationConfig(task_runner="dask", workers=2, dask_address="tcp://10.0.0.5:8786")
    )
    assert remote.address == "tcp://10.0.0.5:8786"


def test_dask_address_without_dask_is_refused():
    with pytest.raises(ValueError, match="only used with task_runner: dask"):
        OrchestrationConfig(task_runner="threads", workers=2, dask_address="tcp://x:8786")


@pytest.mark.slow
def test_sampling_on_a_local_dask_cluster_equals_the_thread_pool(tiny_pipeline, tmp_path):
    repo = tiny_pipeline.repo
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for key in ("output", "curve", "rounds", "summary", "plot"):
        params["sample"][key] = str(tmp_path / params["sample"][key].split("/")[-1])
    params["sample"]["annotations"] = str(tmp_path / "annotations.csv")
    params["tracking"].update(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=str(tmp_path / "art")
    )
    params["orchestration"] = {"task_runner": "dask", "workers": 2, "dask_address": None}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = subprocess.run(
        [sys.executable, "-m", "flows.sample", "--params", str(tmp_path / "params.yaml")],
        cwd=repo,
        env=project_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "LocalCluster" in result.stdout + result.stderr, "not run on a Dask cluster"
    key = ["strategy", "seed", "n_labels"]
    on_dask = pd.read_csv(tmp_path / "annotation_rounds.csv").sort_values(key)
    threads = pd.read_csv(repo / "reports/annotation_rounds.csv").sort_values(key)
    assert len(on_dask) == len(threads) > 0
    pd.testing.assert_frame_equal(
        on_dask[[*key, "accuracy"]].reset_index(drop=True),
        threads[[*key, "accuracy"]].reset_index(drop=True),
    )
    bought = pd.read_parquet(tmp_path / "labeled.parquet")
    assert (
        bought["id"].tolist()
        == pd.read_parquet(repo / "data/labels/labeled.parquet")["id"].tolist()
    )
