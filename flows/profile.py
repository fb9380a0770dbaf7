from pathlib import Path

from prefect import flow

from flows.common import run_stage
from frugal.config import Params
from tasks.profile import profile_task
from tasks.tracking_tasks import open_pipeline_run


@flow(name="profile")
def profile_flow(params: Params, parent_run_id: str | None = None) -> Path:
    """Modeled energy per utterance (each device profile × `energy.workloads`) and
    measured CPU latency, throughput and memory of every model."""
    parent_run_id = parent_run_id or open_pipeline_run(params)
    return profile_task(params.models(), params, parent_run_id)


if __name__ == "__main__":
    run_stage(profile_flow)
