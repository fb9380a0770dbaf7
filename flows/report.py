from pathlib import Path

from prefect import flow

from flows.common import run_stage
from frugal.config import Params
from orchestration.tracking import Tracker, pipeline_run
from tasks.report import report_task


@flow(name="report")
def report_flow(params: Params, tracker: Tracker) -> Path:
    """Every figure of the run on one HTML page, logged to the MLflow parent run."""
    return report_task(params, tracker)


if __name__ == "__main__":
    run_stage(report_flow, pipeline_run)
