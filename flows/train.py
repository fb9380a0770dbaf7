from pathlib import Path

from prefect import flow

from flows.common import run_stage
from frugal.config import Params
from tasks.tracking_tasks import open_pipeline_run
from tasks.train import train_task


@flow(name="train")
def train_flow(params: Params, parent_run_id: str | None = None) -> Path:
    """Fine-tune the pretrained encoder on the labeled set; log and register the model."""
    parent_run_id = parent_run_id or open_pipeline_run(params)
    return train_task(
        params.train.labeled_data,
        params.train.dev_data,
        params,
        parent_run_id,
        params.train.history,
    )


if __name__ == "__main__":
    run_stage(train_flow)
