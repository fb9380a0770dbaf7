from pathlib import Path

from prefect import flow

from flows.common import run_stage
from frugal.config import Params
from tasks.evaluate import evaluate_task
from tasks.tracking_tasks import close_pipeline_run, open_pipeline_run


@flow(name="evaluate")
def evaluate_flow(params: Params, parent_run_id: str | None = None) -> Path:
    """Accuracy, macro-F1, calibration and confusion matrix of every model on the test split."""
    own_run = parent_run_id is None
    parent_run_id = parent_run_id or open_pipeline_run(params)
    out = evaluate_task(params.models(), params.evaluate.test_data, params, parent_run_id)
    if own_run:  # the last DVC stage closes the execution's parent run
        close_pipeline_run(params, parent_run_id)
    return out


if __name__ == "__main__":
    run_stage(evaluate_flow)
