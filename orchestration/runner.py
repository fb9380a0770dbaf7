"""The Prefect task runner of `params.orchestration`: a local thread pool by default, or Dask
(a local cluster of worker processes bound to 127.0.0.1, or a running scheduler)."""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Callable
from pathlib import Path

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from frugal.config import OrchestrationConfig


class InFolder:
    """A task function that runs with `folder` as its working directory: params.yaml's paths
    are relative to the checkout that submitted the task, while a shared Dask worker serves
    several checkouts. Each worker runs one task at a time (`--nthreads 1`)."""

    def __init__(self, fn: Callable, folder: str) -> None:
        functools.update_wrapper(self, fn)
        self.fn, self.folder = fn, folder

    def __call__(self, *args, **kwargs):
        previous = os.getcwd()
        os.chdir(self.folder)
        try:
            return self.fn(*args, **kwargs)
        finally:
            os.chdir(previous)


def task_runner(cfg: OrchestrationConfig) -> TaskRunner:
    if cfg.task_runner == "threads":
        return ThreadPoolTaskRunner(max_workers=cfg.workers)
    from prefect_dask import DaskTaskRunner  # Dask is imported only where it runs

    class CheckoutDaskTaskRunner(DaskTaskRunner):
        """Prefect's Dask task runner, each task run in the submitting checkout's folder."""

        def submit(self, task, parameters, wait_for=None, dependencies=None):
            moved = copy.copy(task)
            moved.fn = InFolder(task.fn, str(Path.cwd()))
            return super().submit(moved, parameters, wait_for, dependencies)

    if cfg.dask_address:
        return CheckoutDaskTaskRunner(address=cfg.dask_address)
    return CheckoutDaskTaskRunner(
        cluster_kwargs={
            "n_workers": cfg.workers,
            "threads_per_worker": 1,
            "processes": True,
            "host": "127.0.0.1",
            "dashboard_address": None,
        }
    )
