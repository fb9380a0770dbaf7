from prefect import flow

from flows.common import run_stage
from frugal.config import Params
from tasks.forecast import forecast_task
from tasks.tracking_tasks import open_pipeline_run


@flow(name="forecast")
def forecast_flow(params: Params, parent_run_id: str | None = None) -> dict:
    """Fit learning curves to the measured points; forecast the accuracy at the pool size and
    forecast.at, the maximum reachable and the labels forecast.target needs (90% intervals)."""
    return forecast_task(params, parent_run_id or open_pipeline_run(params))


if __name__ == "__main__":
    run_stage(forecast_flow)
