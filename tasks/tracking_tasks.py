"""Tasks that open and close the pipeline's parent MLflow run."""

from __future__ import annotations

from prefect import task

from frugal.config import Params
from frugal.hashing import data_md5
from orchestration import tracking


@task(name="open-pipeline-run")
def open_pipeline_run(params: Params, execution_id: str | None = None) -> str:
    """The parent run of this execution (found by commit × params × raw-data hash, plus the
    Prefect flow-run id when the whole pipeline runs as one flow)."""
    return tracking.parent_run(params, data_md5(params.ingest.output), execution_id)


@task(name="close-pipeline-run")
def close_pipeline_run(params: Params, run_id: str, status: str = "FINISHED") -> None:
    tracking.finish_run(params.tracking, run_id, status)
