from pathlib import Path

from prefect import flow

from flows.common import run_stage
from frugal.config import Params
from tasks.continual import continual_task
from tasks.tracking_tasks import open_pipeline_run


@flow(name="continual")
def continual_flow(params: Params, parent_run_id: str | None = None) -> Path:
    """New domains arrive one step at a time: update the model with Fisher exemplars and dynamic
    weight consolidation (and the baselines), register every step's model."""
    parent_run_id = parent_run_id or open_pipeline_run(params)
    return continual_task(params, parent_run_id)


if __name__ == "__main__":
    run_stage(continual_flow)
