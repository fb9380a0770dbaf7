from pathlib import Path

from prefect import flow

from flows.common import run_stage
from frugal.config import Params
from tasks.report import report_task
from tasks.tracking_tasks import open_pipeline_run


@flow(name="report")
def report_flow(params: Params, parent_run_id: str | None = None) -> Path:
    """Every figure of the run on one HTML page, logged to the MLflow parent run."""
    parent_run_id = parent_run_id or open_pipeline_run(params)
    return report_task(params, parent_run_id)


if __name__ == "__main__":
    run_stage(report_flow)
