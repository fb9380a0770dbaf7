from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows.common import run_stage
from frugal.config import load_params
from tasks.learning_curve import learning_curve_task


@flow(name="learning-curve")
def learning_curve_flow(params_path: str = "params.yaml", overrides: dict | None = None) -> Path:
    """Fine-tune (the train recipe) on shares of the bought labels (forecast.order: the first
    rounds, or a random share) at each of forecast.fractions, for each of forecast.seeds;
    score on forecast.eval_data."""
    params = load_params(params_path, overrides)
    return learning_curve_task(params)


if __name__ == "__main__":
    run_stage(learning_curve_flow)
