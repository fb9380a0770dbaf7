from prefect import flow

from flows.common import run_stage
from frugal.config import Params
from orchestration.tracking import Tracker, pipeline_run
from tasks.forecast import forecast_task


@flow(name="forecast")
def forecast_flow(params: Params, tracker: Tracker) -> dict:
    """Fit learning curves to the measured points; forecast the accuracy at the pool size and
    forecast.at, the maximum reachable and the labels forecast.target needs (90% intervals)."""
    return forecast_task(params.forecast, tracker)


if __name__ == "__main__":
    run_stage(forecast_flow, pipeline_run)
