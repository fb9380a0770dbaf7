from pathlib import Path

from prefect import flow

from flows.common import run_stage
from frugal.config import Params
from orchestration.tracking import Tracker, pipeline_run
from tasks.continual import continual_task


@flow(name="continual")
def continual_flow(params: Params, tracker: Tracker) -> Path:
    """New domains arrive one step at a time: update the model with Fisher exemplars and dynamic
    weight consolidation (and the baselines), register every step's model."""
    return continual_task(params.continual, tracker)


if __name__ == "__main__":
    run_stage(continual_flow, pipeline_run)
