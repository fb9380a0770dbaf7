"""The task-runner switch (`orchestration` in params.yaml): threads by default, Dask as a config
change. (Dask runs giving exactly what the thread pool gives: tests/e2e/test_task_runner_dask.py.)"""

from __future__ import annotations

import pytest
from prefect.task_runners import ThreadPoolTaskRunner
from prefect_dask import DaskTaskRunner

from frugal.config import OrchestrationConfig
from orchestration.runner import task_runner


def test_threads_by_default_and_dask_binds_loopback():
    threads = task_runner(OrchestrationConfig(task_runner="threads", workers=3))
    assert isinstance(threads, ThreadPoolTaskRunner)
    # thread-pool runners are equal when their worker counts are
    assert threads == ThreadPoolTaskRunner(max_workers=3)
    assert threads != ThreadPoolTaskRunner(max_workers=2)
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
