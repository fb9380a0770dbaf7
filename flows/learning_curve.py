from pathlib import Path

from prefect import flow

from flows.common import run_stage
from frugal.config import Params
from tasks.learning_curve import learning_curve_task


@flow(name="learning-curve")
def learning_curve_flow(params: Params) -> Path:
    """Fine-tune (the train recipe) on shares of the bought labels (forecast.order: the first
    rounds, or a random share) at each of forecast.fractions, for each of forecast.seeds;
    score on forecast.eval_data."""
    return learning_curve_task(params)


if __name__ == "__main__":
    run_stage(learning_curve_flow)
