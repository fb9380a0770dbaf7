from pathlib import Path

from prefect import flow

from flows.common import run_stage
from frugal.config import Params
from orchestration.tracking import Tracker, pipeline_run
from tasks.train import train_task


@flow(name="train")
def train_flow(params: Params, tracker: Tracker) -> Path:
    """Fine-tune the pretrained encoder on the labeled set; log and register the model."""
    return train_task(params.train, tracker)


if __name__ == "__main__":
    run_stage(train_flow, pipeline_run)
