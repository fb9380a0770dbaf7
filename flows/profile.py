from pathlib import Path

from prefect import flow

from flows.common import run_stage
from frugal.config import Params
from orchestration.tracking import Tracker, pipeline_run
from tasks.profile import profile_task


@flow(name="profile")
def profile_flow(params: Params, tracker: Tracker) -> Path:
    """Modeled energy per utterance (each device profile × `energy.workloads`) and
    measured CPU latency, throughput and memory of every model."""
    return profile_task(params.models(), params.energy, tracker)


if __name__ == "__main__":
    run_stage(profile_flow, pipeline_run)
