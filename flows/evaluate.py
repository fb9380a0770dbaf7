from pathlib import Path

from prefect import flow

from flows.common import run_stage
from frugal.config import Params
from orchestration.tracking import Tracker, pipeline_run
from tasks.evaluate import evaluate_task


@flow(name="evaluate")
def evaluate_flow(params: Params, tracker: Tracker) -> Path:
    """Accuracy, macro-F1, calibration and confusion matrix of every model on the test split."""
    return evaluate_task(params.models(), params.evaluate, tracker)


if __name__ == "__main__":
    run_stage(evaluate_flow, pipeline_run)
