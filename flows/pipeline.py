from pathlib import Path

import yaml
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
from frugal.config import parse_params, read_params
from frugal.errors import ParamsError
from frugal.source import write_fingerprint
from orchestration.repo_lock import repo_lock
from orchestration.runner import task_runner
from tasks.tracking_tasks import close_pipeline_run, open_pipeline_run

DVC_YAML = Path(__file__).resolve().parent.parent / "dvc.yaml"
_DVC = yaml.safe_load(DVC_YAML.read_text(encoding="utf-8"))
STAGES = tuple(_DVC["stages"])  # dvc.yaml's order
SOURCE_OUT = Path(_DVC["vars"][0]["source_fingerprint"])  # the `source` stage's out


@flow(name="frugal-pipeline")
def frugal_pipeline(
    params_path: str = "params.yaml", overrides: dict | None = None, until: str = "report"
) -> object:
    """Every stage of dvc.yaml, in its order: source (fingerprint) → ingest → prepare → embed
    → sample → learning_curve → forecast → train → compress → profile → evaluate, then
    continual (domain updates) and the HTML report, under one MLflow parent run; `until`
    stops after that stage (as `dvc repro <stage>` does). Returns the last stage's result. Holds the repository's DVC lock: one
    pipeline run at a time.

    `overrides` is a nested mapping merged over params.yaml, e.g. {"train": {"epochs": 3}}.
    The parameters are read and validated here, once, and every stage's flow gets them.
    """
    if until not in STAGES:
        raise ParamsError(f"until: unknown stage {until!r}; choose one of {', '.join(STAGES)}")
    raw = read_params(params_path, overrides)
    params = parse_params(raw, params_path, overrides)
    with repo_lock():  # refused while `dvc repro` or another pipeline run holds the repo
        write_fingerprint(raw["ingest"], SOURCE_OUT)  # as the `source` stage: the file's values
        if until == "source":
            return None
        for stage, data_flow in (
            ("ingest", ingest_flow),
            ("prepare", prepare_flow),
            ("embed", embed_flow),
        ):
            result = data_flow(params)
            if stage == until:
                return result
        parent = open_pipeline_run(params, execution_id=flow_run.get_id())
        runner = task_runner(params.orchestration)
        steps = {
            "sample": lambda: sample_flow.with_options(task_runner=runner)(
                params, parent_run_id=parent
            ),
            "learning_curve": lambda: learning_curve_flow(params),
            "forecast": lambda: forecast_flow(params, parent_run_id=parent),
            "train": lambda: train_flow(params, parent_run_id=parent),
            "compress": lambda: compress_flow.with_options(task_runner=runner)(
                params, parent_run_id=parent
            ),
            "profile": lambda: profile_flow(params, parent_run_id=parent),
            "evaluate": lambda: evaluate_flow(params, parent_run_id=parent),
            "continual": lambda: continual_flow(params, parent_run_id=parent),
            "report": lambda: report_flow(params, parent_run_id=parent),
        }
        assert ("source", "ingest", "prepare", "embed", *steps) == STAGES, (
            "dvc.yaml and the flow differ"
        )
        try:
            for stage, run in steps.items():
                result = run()
                if stage == until:
                    break
        except BaseException:
            close_pipeline_run(params, parent, "FAILED")
            raise
        close_pipeline_run(params, parent)
        return result


if __name__ == "__main__":
    from flows.common import run_pipeline

    run_pipeline(frugal_pipeline)
