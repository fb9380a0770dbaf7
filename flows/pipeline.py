from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.runtime import flow_run

from flows.compress import compress_flow
from flows.continual import continual_flow
from flows.embed import embed_flow
from flows.evaluate import evaluate_flow
from flows.forecast import forecast_flow
from flows.ingest import ingest_flow
from flows.learning_curve import learning_curve_flow
from flows.prepare import prepare_flow
from flows.profile import profile_flow
from flows.report import report_flow
from flows.sample import sample_flow
from flows.train import train_flow
from frugal.config import load_params
from tasks.runner import task_runner
from tasks.tracking_tasks import close_pipeline_run, open_pipeline_run


@flow(name="frugal-pipeline")
def frugal_pipeline(params_path: str = "params.yaml", overrides: dict | None = None) -> Path:
    """Every stage end to end: ingest → prepare → embed → sample → learning_curve → forecast
    → train → compress → profile → evaluate, then continual (domain updates) and the HTML
    report, under one MLflow parent run.

    `overrides` is a nested mapping merged over params.yaml, e.g. {"train": {"epochs": 3}}.
    """
    params = load_params(params_path, overrides)
    ingest_flow(params_path, overrides)
    prepare_flow(params_path, overrides)
    embed_flow(params_path, overrides)
    parent = open_pipeline_run(params, execution_id=flow_run.get_id())
    try:
        runner = task_runner(params.orchestration)
        sample_flow.with_options(task_runner=runner)(params_path, overrides, parent_run_id=parent)
        learning_curve_flow(params_path, overrides)
        forecast_flow(params_path, overrides, parent_run_id=parent)
        train_flow(params_path, overrides, parent_run_id=parent)
        compress_flow(params_path, overrides, parent_run_id=parent)
        profile_flow(params_path, overrides, parent_run_id=parent)
        metrics = evaluate_flow(params_path, overrides, parent_run_id=parent)
        continual_flow(params_path, overrides, parent_run_id=parent)
        report_flow(params_path, overrides, parent_run_id=parent)
    except BaseException:
        close_pipeline_run(params, parent, "FAILED")
        raise
    close_pipeline_run(params, parent)
    return metrics


if __name__ == "__main__":
    from flows.common import run_stage

    run_stage(frugal_pipeline)
