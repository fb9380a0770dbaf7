"""The Prefect task runner of `params.orchestration`: a local thread pool by default, or Dask
(a local cluster of worker processes bound to 127.0.0.1, or a running scheduler)."""

from __future__ import annotations

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from frugal.config import OrchestrationConfig


def task_runner(cfg: OrchestrationConfig) -> TaskRunner:
    if cfg.task_runner == "threads":
        return ThreadPoolTaskRunner(max_workers=cfg.workers)
    from prefect_dask import DaskTaskRunner

    if cfg.dask_address:
        return DaskTaskRunner(address=cfg.dask_address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": cfg.workers,
            "threads_per_worker": 1,
            "processes": True,
            "host": "127.0.0.1",
            "dashboard_address": None,
        }
    )
